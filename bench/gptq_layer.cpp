// bench/gptq_layer: lowbit's GPTQ on one linear layer and how long it takes.
//   gptq_layer FILE.safetensors [--json]       a case in ../shared/testdata/gptq's layout
//       (W with X or H; options from __metadata__): agreement with Q when present, both
//       output errors ‖X(Q−W)ᵀ‖² (GPTQ, RTN) and the reference's, and the time.
//   gptq_layer --synthetic ROWSxCOLS [--tokens 4096] [--bits 4 --group 128] [--json]
//       the same on a random layer of that shape (heavy-tailed W, correlated X with a few
//       outlier channels), for timing at model sizes.
// Times are set against the FLOP count and this machine's measured sgemm rate.
#include <cblas.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <random>

#include "bench_util.h"
#include "lowbit/blas_setup.h"
#include "lowbit/error.h"
#include "lowbit/gptq_case.h"
#include "lowbit/threads.h"

namespace {

lowbit::GptqCase synthetic_case(int64_t rows, int64_t cols, int64_t tokens, int bits, int64_t group, uint64_t seed) {
  lowbit::GptqCase c;
  c.path = "synthetic " + std::to_string(rows) + "x" + std::to_string(cols);
  c.rows = rows;
  c.cols = cols;
  c.tokens = tokens;
  c.bits = bits;
  c.group_size = group;
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::student_t_distribution<float> heavy(3.0f);
  c.w.resize(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r) {
    const float row_scale = 0.02f * std::exp(0.3f * normal(rng));
    for (int64_t j = 0; j < cols; ++j) c.w[r * cols + j] = row_scale * heavy(rng);
  }
  // Correlated features: x = z·M with a random banded mixing, plus outlier channels.
  c.x.resize(static_cast<size_t>(tokens * cols));
  std::vector<float> channel_scale(cols, 1.0f);
  for (int64_t j = 0; j < cols; j += 97) channel_scale[j] = 20.0f;
  for (int64_t t = 0; t < tokens; ++t) {
    float prev = 0;
    for (int64_t j = 0; j < cols; ++j) {
      prev = 0.6f * prev + normal(rng);
      c.x[t * cols + j] = channel_scale[j] * prev;
    }
  }
  return c;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"GPTQ on one linear layer: agreement with a reference, output errors, time"};
  std::string file, synthetic;
  int64_t tokens = 4096, group = 128;
  int bits = 4, threads = 0;
  bool json = false;
  app.add_option("file", file, "a case .safetensors (W, X and/or H, optional Q and RTN)");
  app.add_option("--synthetic", synthetic, "ROWSxCOLS: a random layer of that shape instead of a file");
  app.add_option("--tokens", tokens, "calibration tokens of --synthetic")->check(CLI::PositiveNumber);
  app.add_option("--bits", bits, "bits of --synthetic")->check(CLI::Range(2, 8));
  app.add_option("--group", group, "group size of --synthetic (-1: per channel)");
  app.add_option("--threads,-t", threads, "threads (default: all cores)");
  app.add_flag("--json", json, "machine-readable output");
  CLI11_PARSE(app, argc, argv);
  try {
    if (threads > 0) lowbit::set_thread_count(threads);
    lowbit::GptqCase c;
    if (!synthetic.empty()) {
      int64_t rows = 0, cols = 0;
      if (std::sscanf(synthetic.c_str(), "%ldx%ld", &rows, &cols) != 2 || rows <= 0 || cols <= 0) {
        throw lowbit::Error("--synthetic must be ROWSxCOLS", {.value = synthetic});
      }
      c = synthetic_case(rows, cols, tokens, bits, group < 0 ? 0 : group, 1);
    } else if (!file.empty()) {
      c = lowbit::load_gptq_case(file);
    } else {
      throw lowbit::Error("give a case file or --synthetic ROWSxCOLS");
    }
    const double peak = lowbit::bench::measure_sgemm_rate();
    const auto t0 = std::chrono::steady_clock::now();
    const lowbit::GptqCaseResult r = lowbit::run_gptq_case(c);
    const double total = lowbit::bench::seconds_since(t0);
    // FLOPs: SYRK N·cols², Cholesky and triangular inverse 2/3·cols³, updates 2·rows·cols².
    const double n = static_cast<double>(c.cols);
    const double flops_hessian = r.seconds_hessian > 0 ? static_cast<double>(c.tokens) * n * n : 0;
    const double flops_gptq = 2.0 / 3.0 * n * n * n + 2.0 * static_cast<double>(c.rows) * n * n;
    nlohmann::ordered_json out{
        {"case", c.path}, {"rows", c.rows}, {"cols", c.cols}, {"tokens", c.tokens}, {"bits", c.bits},
        {"group_size", c.group_size == 0 ? -1 : c.group_size}, {"sym", c.symmetric}, {"act_order", c.options.act_order},
        {"static_groups", c.options.static_groups}, {"threads", lowbit::thread_count()},
        {"agreement_with_reference_q", r.agreement < 0 ? nlohmann::ordered_json() : nlohmann::ordered_json(r.agreement)},
        {"output_sq_err_gptq", r.error_gptq}, {"output_sq_err_rtn", r.error_rtn},
        {"reference_output_sq_err_gptq", c.reference_error_gptq < 0 ? nlohmann::ordered_json() : nlohmann::ordered_json(c.reference_error_gptq)},
        {"reference_output_sq_err_rtn", c.reference_error_rtn < 0 ? nlohmann::ordered_json() : nlohmann::ordered_json(c.reference_error_rtn)},
        {"percdamp", r.percdamp}, {"dead_columns", r.dead_columns},
        {"seconds_hessian", r.seconds_hessian}, {"seconds_gptq", r.seconds_gptq}, {"seconds_total", total},
        {"gflop_hessian", flops_hessian / 1e9}, {"gflop_gptq", flops_gptq / 1e9},
        {"sgemm_gflops_measured", peak / 1e9}, {"blas_kernels", lowbit::blas_kernel_name()},
        {"hessian_of_sgemm_rate", r.seconds_hessian > 0 ? flops_hessian / r.seconds_hessian / peak : 0.0},
        {"gptq_of_sgemm_rate", flops_gptq / r.seconds_gptq / peak}};
    if (json) {
      std::printf("%s\n", out.dump(2).c_str());
    } else {
      std::printf("%s: %ld x %ld, %ld tokens, %d bits, group %ld%s%s\n", c.path.c_str(), c.rows, c.cols, c.tokens, c.bits,
                  c.group_size == 0 ? -1L : c.group_size, c.options.act_order ? ", act-order" : "",
                  c.options.static_groups ? ", static groups" : "");
      if (r.agreement >= 0) std::printf("  agreement with reference Q: %.4f%%\n", 100 * r.agreement);
      std::printf("  output error ‖X(Q−W)ᵀ‖²: GPTQ %.6g, RTN %.6g (GPTQ/RTN %.3f)\n", r.error_gptq, r.error_rtn,
                  r.error_gptq / r.error_rtn);
      if (c.reference_error_gptq >= 0) {
        std::printf("  reference: GPTQ %.6g, RTN %.6g\n", c.reference_error_gptq, c.reference_error_rtn);
      }
      std::printf("  time: Hessian %.3f s (%.1f GFLOP, %.0f%% of sgemm rate), GPTQ %.3f s (%.1f GFLOP, %.0f%%), total %.3f s\n",
                  r.seconds_hessian, flops_hessian / 1e9, r.seconds_hessian > 0 ? 100 * flops_hessian / r.seconds_hessian / peak : 0.0,
                  r.seconds_gptq, flops_gptq / 1e9, 100 * flops_gptq / r.seconds_gptq / peak, total);
      std::printf("  machine: sgemm %.1f GFLOP/s on %d threads (OpenBLAS %s kernels)\n", peak / 1e9, lowbit::thread_count(), lowbit::blas_kernel_name().c_str());
    }
    return 0;
  } catch (const lowbit::Error& e) {
    std::fprintf(stderr, "gptq_layer: error: %s\n", e.what());
    return 1;
  }
}
