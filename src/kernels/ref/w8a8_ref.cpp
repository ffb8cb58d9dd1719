// The scalar reference of the W8A8 tile (IsaKernels::w8a8_tile): int8 codes multiplied and
// summed in int32, then the two per-row scales.
#include <cstring>

#include "lowbit/kernels.h"

namespace lowbit {

void w8a8_tile_ref(const uint8_t* xs, int nt, const uint8_t* ws, int nr, int64_t cols, float* y, int64_t ldy) {
  for (int r = 0; r < nr; ++r) {
    const uint8_t* w = ws + r * (4 + cols);
    float aw;
    std::memcpy(&aw, w, 4);
    const int8_t* wq = reinterpret_cast<const int8_t*>(w + 4);
    for (int t = 0; t < nt; ++t) {
      const uint8_t* x = xs + t * (4 + cols);
      float ax;
      std::memcpy(&ax, x, 4);
      const int8_t* xq = reinterpret_cast<const int8_t*>(x + 4);
      int32_t acc = 0;
      for (int64_t i = 0; i < cols; ++i) acc += int32_t{xq[i]} * int32_t{wq[i]};
      y[t * ldy + r] = static_cast<float>(acc) * (ax / 127.0f) * (aw / 127.0f);
    }
  }
}

}  // namespace lowbit
