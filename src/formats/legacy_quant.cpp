// Shared pieces of the legacy ggml quantizers (see legacy_quant.h).
#include "formats/legacy_quant.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace lowbit::formats {

float absmax_levels(const float* x, int n, int half, uint8_t* L) {
  float amax = 0, max = 0;
  for (int j = 0; j < n; ++j) {
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  const float d = max / -half;
  const float id = d ? 1.0f / d : 0.0f;
  for (int j = 0; j < n; ++j) {
    const int l = static_cast<int8_t>(x[j] * id + (half + 0.5f));
    L[j] = static_cast<uint8_t>(std::min(2 * half - 1, l));
  }
  return d;
}

float minmax_levels(const float* x, int n, int nmax, uint8_t* L, float* min_out) {
  float min = x[0], max = x[0];
  for (int j = 1; j < n; ++j) {
    min = std::min(min, x[j]);
    max = std::max(max, x[j]);
  }
  const float d = (max - min) / nmax;
  const float id = d ? 1.0f / d : 0.0f;
  for (int j = 0; j < n; ++j) {
    const int l = static_cast<int8_t>((x[j] - min) * id + 0.5f);
    L[j] = static_cast<uint8_t>(std::min(nmax, l));
  }
  *min_out = min;
  return d;
}

void pack_5bit(const uint8_t* L, uint8_t qs[16], uint8_t qh[4]) {
  uint32_t mask = 0;
  for (int j = 0; j < 16; ++j) {
    qs[j] = static_cast<uint8_t>((L[j] & 0x0F) | ((L[j + 16] & 0x0F) << 4));
    mask |= static_cast<uint32_t>((L[j] & 0x10) >> 4) << j;
    mask |= static_cast<uint32_t>((L[j + 16] & 0x10) >> 4) << (j + 16);
  }
  std::memcpy(qh, &mask, 4);
}

int unpack_5bit(const uint8_t qs[16], uint32_t qh, int j) {
  const int low = j < 16 ? (qs[j] & 0x0F) : (qs[j - 16] >> 4);
  return low | (((qh >> j) & 1) << 4);
}

}  // namespace lowbit::formats
