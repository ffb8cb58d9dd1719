// Pieces shared by the legacy ggml formats (q4_0, q4_1, q5_0, q5_1).
#pragma once

#include <cstdint>

namespace lowbit::formats {

// The ggml reference rule of q4_0/q5_0: d = max / -half with max the signed value of
// largest magnitude; L[j] = min(2*half - 1, (int8)(x[j]/d + half + 0.5)). Returns d.
float absmax_levels(const float* x, int n, int half, uint8_t* L);

// The ggml reference rule of q4_1/q5_1: d = (max - min) / nmax;
// L[j] = min(nmax, (int8)((x[j] - min)/d + 0.5)). Returns d, writes min.
float minmax_levels(const float* x, int n, int nmax, uint8_t* L, float* min);

// 5-bit levels of a 32-block: low nibbles (element j | element j+16 << 4) and the fifth
// bits as a little-endian u32 mask (bit j = element j).
void pack_5bit(const uint8_t* L, uint8_t qs[16], uint8_t qh[4]);
// Level of element j (0..31) of a packed 5-bit block.
int unpack_5bit(const uint8_t qs[16], uint32_t qh, int j);

}  // namespace lowbit::formats
