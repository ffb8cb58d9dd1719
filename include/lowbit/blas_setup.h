// OpenBLAS picks its kernels from the CPU model at load time, and on some virtual machines
// it does not recognise the CPU and falls back to SSE3 kernels ("Prescott"), 6x slower
// than the AVX-512 ones the CPU runs. ensure_blas_kernels() checks once, before the first
// BLAS call, and when the detected core lacks AVX2 that the CPU has, selects the best
// matching core (as OPENBLAS_CORETYPE would). A user's OPENBLAS_CORETYPE is respected.
#pragma once

#include <string>

namespace lowbit {

void ensure_blas_kernels();
std::string blas_kernel_name();  // e.g. "Cooperlake"

}  // namespace lowbit
