// The W8A8 weight panels (w8a8_pack_panels) and the scalar reference of the W8A8 tile
// (IsaKernels::w8a8_tile): int8 codes multiplied and summed in int32, then the two
// per-row scales.
#include <cstring>

#include "lowbit/kernels.h"

namespace lowbit {

std::vector<uint8_t> w8a8_pack_panels(const uint8_t* rows, int64_t n, int64_t cols) {
  const int64_t panel = w8a8_panel_bytes(cols);
  std::vector<uint8_t> out(static_cast<size_t>((n + 3) / 4 * panel), 0);
  for (int64_t r = 0; r < n; ++r) {
    const uint8_t* src = rows + r * (4 + cols);
    uint8_t* p = out.data() + (r / 4) * panel;
    const int lane = static_cast<int>(r % 4);
    std::memcpy(p + 4 * lane, src, 4);  // absmax
    int32_t sum = 0;
    for (int64_t c = 0; c < cols; ++c) {
      sum += static_cast<int8_t>(src[4 + c]);
      p[32 + ((c / 64) * 4 + lane) * 64 + c % 64] = src[4 + c];
    }
    std::memcpy(p + 16 + 4 * lane, &sum, 4);
  }
  return out;
}

void w8a8_tile_ref(const uint8_t* xs, int nt, const uint8_t* panel, int nr, int64_t cols, float* y, int64_t ldy) {
  for (int r = 0; r < nr; ++r) {
    float aw;
    std::memcpy(&aw, panel + 4 * r, 4);
    for (int t = 0; t < nt; ++t) {
      const uint8_t* x = xs + t * (4 + cols);
      float ax;
      std::memcpy(&ax, x, 4);
      const int8_t* xq = reinterpret_cast<const int8_t*>(x + 4);
      int32_t acc = 0;
      for (int64_t i = 0; i < cols; ++i) {
        acc += int32_t{xq[i]} * int32_t{static_cast<int8_t>(panel[32 + ((i / 64) * 4 + r) * 64 + i % 64])};
      }
      y[t * ldy + r] = static_cast<float>(acc) * (ax / 127.0f) * (aw / 127.0f);
    }
  }
}

}  // namespace lowbit
