// Choosing OpenBLAS's kernels when its own detection fails (see blas_setup.h).
#include "lowbit/blas_setup.h"

#include <cblas.h>

#include <cstdlib>
#include <mutex>
#include <string_view>

// Exported by OpenBLAS builds with DYNAMIC_ARCH (Debian's); weak so any other BLAS links.
extern "C" void gotoblas_dynamic_init(void) __attribute__((weak));
extern "C" void gotoblas_dynamic_quit(void) __attribute__((weak));

namespace lowbit {
namespace {

bool uses_avx2(std::string_view core) {
  for (std::string_view c : {"Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids"}) {
    if (core == c) return true;
  }
  return false;
}

const char* best_core_for_this_cpu() {
  __builtin_cpu_init();
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
  if (avx512) return __builtin_cpu_supports("avx512bf16") ? "Cooperlake" : "SkylakeX";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
  return nullptr;
}

}  // namespace

void ensure_blas_kernels() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (std::getenv("OPENBLAS_CORETYPE") != nullptr || gotoblas_dynamic_init == nullptr || gotoblas_dynamic_quit == nullptr) return;
    if (uses_avx2(openblas_get_corename())) return;
    const char* core = best_core_for_this_cpu();
    if (core == nullptr) return;
    setenv("OPENBLAS_CORETYPE", core, 0);
    gotoblas_dynamic_quit();
    gotoblas_dynamic_init();
  });
}

std::string blas_kernel_name() {
  ensure_blas_kernels();
  return openblas_get_corename();
}

}  // namespace lowbit
