// mxfp4's code book and scale (OCP Microscaling, ggml type 39), shared by the format
// (mxfp4.cpp) and its kernels: value = kE2M1x2[q] * 2^(e - 127) / 2.
#pragma once

#include <cstdint>

#include "lowbit/float_convert.h"

namespace lowbit::formats {

// E2M1 values, doubled so they are integers; the scale carries the factor 1/2.
inline constexpr int8_t kE2M1x2[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

// 2^(e - 127) / 2: the scale of a block with E8M0 exponent e.
inline float mxfp4_half_scale(uint8_t e) { return e8m0_to_fp32(e) * 0.5f; }

}  // namespace lowbit::formats
