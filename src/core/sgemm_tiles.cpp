// sgemm_tiles and SingleThreadedBlas (sgemm_tiles.h).
#include "core/sgemm_tiles.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>

#include "lowbit/blas_setup.h"

namespace lowbit {
namespace {

// C is cut into kTile x kTile tiles: large enough that packing each tile's panels costs
// little next to its multiply-adds, small enough to share among many cores (bench/sgemm_tiles:
// 0.92-1.38x OpenBLAS's own threading on 2 cores; 128 and 512 and 1-D tiles were slower).
constexpr int64_t kTile = 256;

}  // namespace

void sgemm_tiles(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                 const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  ensure_blas_kernels();
  const int64_t row_tiles = (M + kTile - 1) / kTile, col_tiles = (N + kTile - 1) / kTile;
  const auto ta = trans_a ? CblasTrans : CblasNoTrans, tb = trans_b ? CblasTrans : CblasNoTrans;
  // Always inside a parallel region (also with one tile or one thread), so OpenBLAS never
  // splits a tile by the thread count.
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < row_tiles * col_tiles; ++t) {
    const int64_t m0 = (t / col_tiles) * kTile, n0 = (t % col_tiles) * kTile;
    const int64_t m = std::min(kTile, M - m0), n = std::min(kTile, N - n0);
    cblas_sgemm(CblasRowMajor, ta, tb, static_cast<int>(m), static_cast<int>(n), static_cast<int>(K), alpha,
                trans_a ? A + m0 : A + m0 * lda, static_cast<int>(lda), trans_b ? B + n0 * ldb : B + n0, static_cast<int>(ldb), beta,
                C + m0 * ldc + n0, static_cast<int>(ldc));
  }
}

SingleThreadedBlas::SingleThreadedBlas() : threads_(openblas_get_num_threads()) { openblas_set_num_threads(1); }
SingleThreadedBlas::~SingleThreadedBlas() { openblas_set_num_threads(threads_); }

}  // namespace lowbit
