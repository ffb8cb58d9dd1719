// Quantizes a model with a recipe and reports size and perplexity against the original,
// through lowbit's C++ API:  quantize_and_evaluate MODEL TEXT OUT.gguf [RECIPE]
#include <cstdio>
#include <fstream>
#include <sstream>

#include "lowbit/error.h"
#include "lowbit/model_io.h"
#include "lowbit/perplexity.h"
#include "lowbit/quantize.h"

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s MODEL TEXT OUT.gguf [RECIPE]\n", argv[0]);
    return 2;
  }
  try {
    lowbit::QuantizeOptions q;
    q.input = argv[1];
    q.output = argv[3];
    q.recipe = argc > 4 ? argv[4] : "q4_k_m";
    const lowbit::QuantizeReport report = lowbit::quantize_model(q);
    std::ifstream in(argv[2], std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    lowbit::PerplexityOptions p;
    p.n_ctx = 128;
    p.max_chunks = 16;
    for (const char* path : {argv[1], argv[3]}) {
      const lowbit::Model m = lowbit::load_model(path);
      const auto tokens = m.tokenizer->encode(text.str(), true);
      const auto r = lowbit::compute_perplexity(m, tokens, p);
      std::printf("%s: %.2f MB, PPL %.4f\n", path, m.weight_bytes() / 1e6, r.ppl);
    }
    std::printf("recipe %s: %.3f bits per weight\n", q.recipe.c_str(), report.bits_per_weight());
  } catch (const lowbit::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
