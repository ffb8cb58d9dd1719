// The ternary formats tq1_0 and tq2_0 (ggml types 34, 35) as codes for the int8 path: one
// super-block of 256 elements decoded by the format's own dequantize, each value (t - 1)·d
// read back as its code t in {0, 1, 2}, and d from the block's last two bytes (both
// formats end with their fp16 d). Used by the scalar unpacker and the repacked layouts, so
// neither restates the base-3 or 2-bit packing.
#pragma once

#include <cstdint>
#include <cstring>

#include "formats/format_impl.h"
#include "lowbit/format.h"

namespace lowbit::kernels {

inline constexpr int64_t kTernarySuper = 256;

// t: (256) the codes of the super-block at blk of format f; returns its scale d.
inline float ternary_codes(const Format& f, const uint8_t* blk, uint8_t* t) {
  float v[kTernarySuper];
  f.dequantize(blk, 1, kTernarySuper, 0, 1, v);
  uint16_t dh;
  std::memcpy(&dh, blk + f.block_bytes - 2, 2);
  const float d = formats::h2f(dh);
  for (int64_t i = 0; i < kTernarySuper; ++i) {
    // v = (t - 1) d exactly: its sign against d's gives t (d = 0: every code reads as 1)
    const float s = d < 0 ? -v[i] : v[i];
    t[i] = static_cast<uint8_t>(s > 0 ? 2 : s < 0 ? 0 : 1);
  }
  return d;
}

}  // namespace lowbit::kernels
