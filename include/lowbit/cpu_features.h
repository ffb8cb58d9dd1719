// What the CPU this process runs on can execute, detected once at run time: CPUID, the OS's
// saved register state (XGETBV) and, for AMX, the permission Linux grants per process
// (arch_prctl ARCH_REQ_XCOMP_PERM). Not kernel selection (kernels.h does that).
#pragma once

#include <string>

namespace lowbit {

struct CpuFeatures {
  std::string brand;          // "Intel(R) Xeon(R) Processor", from CPUID
  bool avx2 = false;          // with FMA and F16C
  bool avx512 = false;        // F, BW, DQ, VL, with the OS saving ZMM state
  bool avx512_vnni = false;
  bool avx512_bf16 = false;
  bool avx_vnni = false;
  bool amx_listed = false;    // CPUID lists AMX-TILE/INT8
  bool amx_usable = false;    // listed, XCR0 tile state on, and the OS granted permission
  std::string amx_reason;     // why AMX is not usable (empty when it is)

  std::string summary() const;  // "avx2 avx512 avx512_vnni ... amx: listed, not usable (...)"
};

// Detected on the first call; the same object afterwards.
const CpuFeatures& cpu_features();

}  // namespace lowbit
