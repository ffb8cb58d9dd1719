// The 12-byte packings of k-quant sub-scales: eight 6-bit scales and eight 6-bit mins
// (q4_k, q5_k), and q3_k's sixteen 6-bit scales.
#pragma once

#include <cstdint>

namespace lowbit::formats {

// scales: 12 bytes, zeroed before the first call; j in 0..7; sc, m in 0..63.
inline void pack_scale_min_k4(uint8_t* q, int j, uint8_t sc, uint8_t m) {
  if (j < 4) {
    q[j] = static_cast<uint8_t>(q[j] | sc);
    q[j + 4] = static_cast<uint8_t>(q[j + 4] | m);
  } else {
    q[j + 4] = static_cast<uint8_t>((sc & 0xF) | ((m & 0xF) << 4));
    q[j - 4] = static_cast<uint8_t>(q[j - 4] | ((sc >> 4) << 6));
    q[j] = static_cast<uint8_t>(q[j] | ((m >> 4) << 6));
  }
}

inline void unpack_scale_min_k4(const uint8_t* q, int j, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    *m = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// q3_k: sub-block j's signed scale (-32..31) from the 12 packed bytes (16 six-bit values
// biased by 32: low nibbles in bytes 0..7, high 2 bits in bytes 8..11).
inline int q3_k_scale(const uint8_t* scales, int j) {
  const int low = j < 8 ? scales[j] & 0xF : scales[j - 8] >> 4;
  return (low | (((scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32;
}

}  // namespace lowbit::formats
