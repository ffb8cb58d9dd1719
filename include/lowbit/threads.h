// The worker thread count, set once for both pools lowbit computes with: OpenMP (kernels,
// quantization) and OpenBLAS (GEMM, Cholesky).
#pragma once

namespace lowbit {

void set_thread_count(int threads);  // threads >= 1
int thread_count();

}  // namespace lowbit
