// avx512_isa (kernel_impl.h), compiled for the baseline x86-64: it asks the CPU before it
// runs any of the AVX-512 code that builds the instruction set's tables, so a CPU without
// AVX-512 (AMD Zen 3, say) never executes an instruction it lacks.
#include "lowbit/cpu_features.h"
#include "kernels/kernel_impl.h"

namespace lowbit::kernels {

const IsaEntry& avx512_isa() {
  static const IsaEntry entry = [] {
    bool (*supported)() = [] { return cpu_features().avx512_vnni; };
    if (!supported()) return IsaEntry{&kAvx512Kernels, {}, {}, {}, {}, supported};
    return IsaEntry{&kAvx512Kernels, avx512_fused_kernels(), avx512_fused_f32_kernels(), avx512_repacks(), avx512_encoders(), supported};
  }();
  return entry;
}

}  // namespace lowbit::kernels
