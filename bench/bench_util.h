// Small helpers shared by the bench tools: wall time and this machine's measured sgemm
// rate (the practical float FMA limit the GEMM-bound tools report against).
#pragma once

#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "lowbit/blas_setup.h"

namespace lowbit::bench {

inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Best of 3 sgemm runs of n³, FLOP/s.
inline double measure_sgemm_rate(int n = 2048) {
  ensure_blas_kernels();
  std::vector<float> a(static_cast<size_t>(n) * n, 1.0f), b(a), c(a.size());
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
    best = std::max(best, 2.0 * n * n * n / seconds_since(t0));
  }
  return best;
}

}  // namespace lowbit::bench
