// bench/prefill: tokens/s of a prompt prefill through the engine (embed → blocks → head),
// for a model in any format, e.g. the 1.1B synthetic shape in f16 (bench/make_synthetic_model).
// Reports the FLOP rate against this machine's measured sgemm rate (the limit of a GEMM
// prefill: 2·params FLOPs per token plus attention).
//   prefill MODEL [--tokens 512] [--reps 3] [--threads N] [--json]
#include <cblas.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "lowbit/engine.h"
#include "bench_util.h"
#include "lowbit/blas_setup.h"
#include "lowbit/error.h"
#include "lowbit/model_io.h"
#include "lowbit/threads.h"


int main(int argc, char** argv) {
  CLI::App app{"prefill speed of the engine"};
  std::string path;
  int64_t tokens = 512;
  int reps = 3, threads = 0;
  bool json = false;
  app.add_option("model", path, "any model lowbit reads")->required();
  app.add_option("--tokens", tokens, "prompt length")->check(CLI::PositiveNumber);
  app.add_option("--reps", reps, "runs (the best is reported)")->check(CLI::PositiveNumber);
  app.add_option("--threads,-t", threads, "threads (default: all cores)");
  app.add_flag("--json", json, "machine-readable output");
  CLI11_PARSE(app, argc, argv);
  try {
    if (threads > 0) lowbit::set_thread_count(threads);
    const lowbit::Model m = lowbit::load_model(path);
    const auto& c = m.config;
    if (tokens > c.context_length) throw lowbit::Error("--tokens exceeds the model's context", {.value = std::to_string(tokens)});
    std::vector<int32_t> ids(tokens);
    for (int64_t t = 0; t < tokens; ++t) ids[t] = static_cast<int32_t>((t * 7919) % c.vocab_size);
    std::vector<float> logits(static_cast<size_t>(c.vocab_size));
    lowbit::Engine engine(m, tokens);
    double best = 1e30;
    for (int r = 0; r < reps; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      engine.forward(ids, 0, logits.data(), false);
      best = std::min(best, lowbit::bench::seconds_since(t0));
    }
    // Matrix FLOPs: 2 per weight per token in the blocks, the head for the last token only;
    // attention: 2·2·T²/2·dim per layer (scores and weighted sum, causal).
    const double block_params = static_cast<double>(m.parameter_count() - m.token_embd.numel() - m.output.numel());
    const double flops = 2.0 * block_params * tokens + 2.0 * m.output.numel() +
                         2.0 * static_cast<double>(tokens) * tokens * c.dim * c.n_layers;
    const double peak = lowbit::bench::measure_sgemm_rate();
    nlohmann::ordered_json out{{"model", path}, {"weights", std::string(m.layers[0].attn_q.format->name)},
                               {"tokens", tokens}, {"threads", lowbit::thread_count()}, {"seconds", best},
                               {"tokens_per_second", tokens / best}, {"gflop", flops / 1e9}, {"gflops", flops / best / 1e9},
                               {"sgemm_gflops_measured", peak / 1e9}, {"blas_kernels", lowbit::blas_kernel_name()}, {"of_sgemm_rate", flops / best / peak}};
    if (json) {
      std::printf("%s\n", out.dump(2).c_str());
    } else {
      std::printf("%s (%s): prefill of %ld tokens in %.3f s = %.1f tokens/s, %.1f GFLOP at %.1f GFLOP/s (%.0f%% of sgemm's %.1f) on %d threads\n",
                  path.c_str(), std::string(m.layers[0].attn_q.format->name).c_str(), tokens, best, tokens / best, flops / 1e9,
                  flops / best / 1e9, 100 * flops / best / peak, peak / 1e9, lowbit::thread_count());
    }
    return 0;
  } catch (const lowbit::Error& e) {
    std::fprintf(stderr, "prefill: error: %s\n", e.what());
    return 1;
  }
}
