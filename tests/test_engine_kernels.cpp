// The engine with the fast kernels against the engine with the reference kernels
// (matmul_ref: fp32 weights, fp32 activations) on the three shared models, in float formats
// and in formats with an int8 path, and the perplexity each gives.
//
// Tolerances. Float path: only the summation order differs, so max |Δlogit| <= 1e-4 x
// max |logit|. Int8 path: each linear input is rounded to within d/2 = absmax/254 of its
// 16-element sub-block, a relative error of at most 1/254 per element, and the logits
// inherit it through every layer (4 rounded inputs per layer plus the head's). We hold
// max |Δlogit| <= (4 n_layers + 1) / 254 x max |logit| and the perplexity to 0.01%.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "lowbit/engine.h"
#include "lowbit/kernels.h"
#include "lowbit/model_io.h"
#include "lowbit/perplexity.h"
#include "test_support.h"

namespace lowbit {
namespace {

struct Shared {
  const char* name;
  Model (*load)();
  const char* text;
};

Model load_stories() {
  return load_llama2c(test::shared_path("models/stories260K/stories260K.bin"), test::shared_path("models/stories260K/tok512.bin"));
}
Model load_tinystories() { return load_hf_folder(test::shared_path("models/tinystories-656k")); }
Model load_shakespeare() { return load_hf_folder(test::shared_path("models/shakespeare-llama-4m")); }

const Shared kModels[] = {
    {"stories260K", &load_stories, "data/tinystories-sample-4k.txt"},
    {"tinystories-656k", &load_tinystories, "data/tinystories-sample-4k.txt"},
    {"shakespeare-llama-4m", &load_shakespeare, "data/shakespeare-test.txt"},
};

std::vector<float> logits_of(const Model& m, std::span<const int32_t> tokens, bool reference) {
  Engine e(m, static_cast<int64_t>(tokens.size()));
  e.use_reference_kernels(reference);
  std::vector<float> out(tokens.size() * m.config.vocab_size);
  // Prefill (panels) for all but the last 3 tokens, then decode steps (fused kernels).
  const size_t split = tokens.size() - 3;
  e.forward(tokens.first(split), 0, out.data(), true);
  for (size_t t = split; t < tokens.size(); ++t) e.forward(tokens.subspan(t, 1), static_cast<int64_t>(t), out.data() + t * m.config.vocab_size, true);
  return out;
}

TEST(EngineKernels, LogitsMatchTheReferenceKernels) {
  for (const Shared& s : kModels) {
    const Model base = s.load();
    auto tokens = base.tokenizer->encode(test::read_file(test::shared_path(s.text)), true);
    tokens.resize(std::min<size_t>(tokens.size(), std::min<int64_t>(64, base.config.context_length)));
    for (const char* fmt : {"", "f16", "q8_0", "q4_0", "q4_k", "q6_k", "iq4_xs", "q3_k", "q2_k", "int3_g32_asym", "mxfp4", "tq1_0", "int4_pc_asym", "fp8_e4m3", "nf4_dq"}) {
      if (*fmt && !format_fits(format_by_name(fmt), base.config.hidden_dim)) continue;  // stories260K: 172
      const Model m = *fmt ? convert_weights(base, format_by_name(fmt)) : load_model(base.source);
      const auto fast = logits_of(m, tokens, false), ref = logits_of(m, tokens, true);
      double max_ref = 0, diff = 0;
      for (size_t i = 0; i < ref.size(); ++i) {
        max_ref = std::max(max_ref, static_cast<double>(std::fabs(ref[i])));
        diff = std::max(diff, static_cast<double>(std::fabs(fast[i] - ref[i])));
      }
      const bool q8 = *fmt && weight_kernels(format_by_name(fmt)).act == ActFormat::kQ8;
      const double tol = q8 ? (4.0 * static_cast<double>(m.config.n_layers) + 1) / 254.0 : 1e-4;
      std::printf("%s %s relative %.2e (bound %.2e)\n", s.name, *fmt ? fmt : "native", diff / max_ref, tol);
      EXPECT_LE(diff, tol * max_ref) << s.name << " " << (*fmt ? fmt : "native") << " relative " << diff / max_ref;
    }
  }
}

TEST(EngineKernels, PerplexityWithinOneHundredthOfAPercent) {
  const Model base = load_shakespeare();
  const auto tokens = base.tokenizer->encode(test::read_file(test::shared_path("data/shakespeare-test.txt")), true);
  for (const char* fmt : {"q8_0", "q4_k"}) {  // a legacy format and a k-quant
    const Model m = convert_weights(base, format_by_name(fmt));
    PerplexityOptions o;
    o.n_ctx = 256;  // the whole test text: on 8 chunks alone the rounding moves it up to 0.03%
    const double fast = compute_perplexity(m, tokens, o).ppl;
    o.reference_kernels = true;
    o.reference_act_rounding = true;  // the same int8 activations: only the summation order differs
    const double ref = compute_perplexity(m, tokens, o).ppl;
    std::printf("%s fast %.6f reference %.6f relative %.2e\n", fmt, fast, ref, std::fabs(fast - ref) / ref);
    EXPECT_NEAR(fast, ref, 1e-4 * ref) << fmt;
  }
}

}  // namespace
}  // namespace lowbit
