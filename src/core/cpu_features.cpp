// Run-time CPU feature detection (see lowbit/cpu_features.h). x86-64 only; elsewhere every
// feature reads false and the scalar kernels run.
#include "lowbit/cpu_features.h"

#include <cstdint>
#include <cstring>

#if defined(__x86_64__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace lowbit {
namespace {

#if defined(__x86_64__)
struct Regs {
  uint32_t a = 0, b = 0, c = 0, d = 0;
};

Regs cpuid(uint32_t leaf, uint32_t sub = 0) {
  Regs r;
  __cpuid_count(leaf, sub, r.a, r.b, r.c, r.d);
  return r;
}

uint64_t xgetbv0() {
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<uint64_t>(hi) << 32) | lo;
}

bool bit(uint32_t v, int i) { return (v >> i) & 1u; }

// Linux: a process must ask for the AMX tile data state before its first tile instruction.
bool request_amx_permission() {
  constexpr int kArchGetXcompPerm = 0x1022, kArchReqXcompPerm = 0x1023, kXfeatureTileData = 18;
  if (syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureTileData) != 0) return false;
  uint64_t granted = 0;
  if (syscall(SYS_arch_prctl, kArchGetXcompPerm, &granted) != 0) return false;
  return bit(static_cast<uint32_t>(granted >> 17), 1);  // bit 18
}

CpuFeatures detect() {
  CpuFeatures f;
  const uint32_t max_leaf = cpuid(0).a;
  if (cpuid(0x80000000).a >= 0x80000004) {
    char brand[49] = {};
    for (uint32_t i = 0; i < 3; ++i) {
      const Regs r = cpuid(0x80000002 + i);
      std::memcpy(brand + 16 * i, &r, 16);
    }
    f.brand = brand;
    const size_t first = f.brand.find_first_not_of(' ');
    f.brand = first == std::string::npos ? "" : f.brand.substr(first);
  }
  const Regs l1 = cpuid(1);
  const bool osxsave = bit(l1.c, 27);
  if (!osxsave || max_leaf < 7) return f;
  const uint64_t xcr0 = xgetbv0();
  const bool ymm_state = (xcr0 & 0x6) == 0x6, zmm_state = (xcr0 & 0xE6) == 0xE6;
  const bool tile_state = (xcr0 & 0x60000) == 0x60000;
  const Regs l7 = cpuid(7), l7s1 = cpuid(7, 1);
  f.avx2 = ymm_state && bit(l7.b, 5) && bit(l1.c, 12) && bit(l1.c, 29);  // AVX2, FMA, F16C
  f.avx512 = f.avx2 && zmm_state && bit(l7.b, 16) && bit(l7.b, 17) && bit(l7.b, 30) && bit(l7.b, 31);
  f.avx512_vnni = f.avx512 && bit(l7.c, 11);
  f.avx512_bf16 = f.avx512 && bit(l7s1.a, 5);
  f.avx_vnni = f.avx2 && bit(l7s1.a, 4);
  f.amx_listed = bit(l7.d, 24) && bit(l7.d, 25);  // AMX-TILE, AMX-INT8
  if (!f.amx_listed) {
    f.amx_reason = "not listed by CPUID";
  } else if (!tile_state) {
    f.amx_reason = "the OS does not enable tile state (XCR0 bits 17-18)";
  } else if (!request_amx_permission()) {
    f.amx_reason = "arch_prctl(ARCH_REQ_XCOMP_PERM) refused";
  } else {
    f.amx_usable = true;
  }
  return f;
}
#else
CpuFeatures detect() {
  CpuFeatures f;
  f.amx_reason = "not an x86-64 CPU";
  return f;
}
#endif

}  // namespace

std::string CpuFeatures::summary() const {
  std::string s;
  auto add = [&](bool on, const char* name) {
    if (!on) return;
    if (!s.empty()) s += ' ';
    s += name;
  };
  add(avx2, "avx2");
  add(avx_vnni, "avx_vnni");
  add(avx512, "avx512");
  add(avx512_vnni, "avx512_vnni");
  add(avx512_bf16, "avx512_bf16");
  add(amx_usable, "amx");
  if (amx_listed && !amx_usable) s += (s.empty() ? "" : " ") + std::string("(amx listed, not usable: ") + amx_reason + ")";
  return s.empty() ? "scalar" : s;
}

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

}  // namespace lowbit
