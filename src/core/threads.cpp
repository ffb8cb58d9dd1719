// Thread count for OpenMP and OpenBLAS together (see lowbit/threads.h).
#include "lowbit/threads.h"

#include <cblas.h>
#include <omp.h>

#include "lowbit/blas_setup.h"

namespace lowbit {

void set_thread_count(int threads) {
  ensure_blas_kernels();
  omp_set_num_threads(threads);
  openblas_set_num_threads(threads);
}

int thread_count() { return omp_get_max_threads(); }

}  // namespace lowbit
