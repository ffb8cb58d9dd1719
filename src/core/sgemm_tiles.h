// Matrix products whose bits do not depend on the thread count. OpenBLAS splits a product
// among its threads by their number, and the results differ in the last bits between 1
// and 2 threads; quantized files then differ too. sgemm_tiles cuts the output into 256 x 256
// tiles, fixed by the shape alone, each tile one single-threaded OpenBLAS call (OpenBLAS runs on
// one thread inside an OpenMP parallel region), the tiles shared among the OpenMP threads:
// the same bits for 1, 2 or N threads, at about OpenBLAS's own threaded speed.
#pragma once

#include <cstdint>

namespace lowbit {

// C (M, N) = alpha · op(A) · op(B) + beta · C, row-major, as cblas_sgemm: op(A) is (M, K),
// op(B) is (K, N); lda, ldb, ldc are the row strides as stored.
void sgemm_tiles(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                 const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// While one lives, OpenBLAS (LAPACK included) runs on one thread: for factorizations
// whose blocking would otherwise follow the thread count (GPTQ's Cholesky).
class SingleThreadedBlas {
 public:
  SingleThreadedBlas();
  ~SingleThreadedBlas();
  SingleThreadedBlas(const SingleThreadedBlas&) = delete;
  SingleThreadedBlas& operator=(const SingleThreadedBlas&) = delete;

 private:
  int threads_;
};

}  // namespace lowbit
