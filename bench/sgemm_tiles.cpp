// bench/sgemm_tiles: what thread-count-independent products cost. For the shapes lowbit
// multiplies (a Hessian's xᵀx, a GPTQ lazy update, a prefill's x·Wᵀ, attention), the rate of
// OpenBLAS threading by itself (cblas_sgemm) and of sgemm_tiles (fixed tiles, one thread of
// OpenBLAS each), measured in the same run, and whether each gives the same bits on 1 and
// on all threads.
//   sgemm_tiles [--reps 5] [--json]
#include <cblas.h>
#include <omp.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <random>

#include "core/sgemm_tiles.h"
#include "lowbit/blas_setup.h"
#include "lowbit/threads.h"

namespace {

struct Shape {
  const char* what;
  bool ta, tb;
  int64_t M, N, K;
};

double seconds_of(const std::function<void()>& f, int reps) {
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"sgemm_tiles: OpenBLAS threading vs fixed tiles"};
  int reps = 5;
  bool json = false;
  app.add_option("--reps", reps, "repetitions (the best is kept)");
  app.add_flag("--json", json, "JSON on stdout");
  CLI11_PARSE(app, argc, argv);
  lowbit::ensure_blas_kernels();
  const int threads = lowbit::thread_count();
  const Shape shapes[] = {{"hessian 4096 cols, 2048 tokens", true, false, 4096, 4096, 2048},
                          {"gptq update 4096x4096, block 128", true, false, 3968, 4096, 128},
                          {"prefill 512 tokens x (4096, 4096)", false, true, 512, 4096, 4096},
                          {"prefill 512 tokens x (11008, 4096)", false, true, 512, 11008, 4096},
                          {"attention 512x512, head 128", false, true, 512, 512, 128}};
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  std::printf("%d threads (%s)\n%-36s %12s %12s %8s %s\n", threads, lowbit::blas_kernel_name().c_str(), "shape", "openblas GF/s",
              "tiles GF/s", "ratio", "same bits 1 vs all threads: openblas / tiles");
  std::mt19937 rng(1);
  std::normal_distribution<float> g;
  for (const Shape& s : shapes) {
    const int64_t lda = s.ta ? s.M : s.K, ldb = s.tb ? s.K : s.N;
    std::vector<float> A(static_cast<size_t>(s.M * s.K)), B(static_cast<size_t>(s.K * s.N)), C(static_cast<size_t>(s.M * s.N));
    for (float& v : A) v = g(rng);
    for (float& v : B) v = g(rng);
    auto blas = [&] {
      cblas_sgemm(CblasRowMajor, s.ta ? CblasTrans : CblasNoTrans, s.tb ? CblasTrans : CblasNoTrans, static_cast<int>(s.M),
                  static_cast<int>(s.N), static_cast<int>(s.K), 1.0f, A.data(), static_cast<int>(lda), B.data(), static_cast<int>(ldb), 0.0f,
                  C.data(), static_cast<int>(s.N));
    };
    auto tiles = [&] { lowbit::sgemm_tiles(s.ta, s.tb, s.M, s.N, s.K, 1.0f, A.data(), lda, B.data(), ldb, 0.0f, C.data(), s.N); };
    const double flops = 2.0 * s.M * s.N * s.K;
    const double t_blas = seconds_of(blas, reps), t_tiles = seconds_of(tiles, reps);
    auto same_bits = [&](const std::function<void()>& f) {
      lowbit::set_thread_count(1);
      f();
      const std::vector<float> one = C;
      lowbit::set_thread_count(threads);
      f();
      return std::memcmp(one.data(), C.data(), C.size() * sizeof(float)) == 0;
    };
    const bool blas_same = same_bits(blas), tiles_same = same_bits(tiles);
    std::printf("%-36s %12.1f %12.1f %8.2f %s / %s\n", s.what, flops / t_blas / 1e9, flops / t_tiles / 1e9, t_blas / t_tiles,
                blas_same ? "yes" : "no", tiles_same ? "yes" : "no");
    out.push_back({{"shape", s.what}, {"openblas_gflops", flops / t_blas / 1e9}, {"tiles_gflops", flops / t_tiles / 1e9},
                   {"openblas_same_bits", blas_same}, {"tiles_same_bits", tiles_same}});
  }
  if (json) std::printf("%s\n", nlohmann::ordered_json{{"threads", threads}, {"results", out}}.dump(2).c_str());
  return 0;
}
