// q5_0 (ggml type 6): blocks of 32, fp16 scale, 5-bit levels -16..15 (4 low bits in qs,
// the fifth in a 32-bit mask). Encoding matches ggml byte for byte.
#include "formats/format_impl.h"
#include "formats/formats.h"
#include "formats/scale_search.h"

namespace lowbit::formats {
namespace {

constexpr int kBlock = 32;

struct BlockQ5_0 {
  uint16_t d;              // fp16 scale; value = (q - 16) * d
  uint8_t qh[4];           // bit j: fifth bit of element j (little-endian u32)
  uint8_t qs[kBlock / 2];  // low nibbles: element j (low), element j+16 (high)
};
static_assert(sizeof(BlockQ5_0) == 22, "q5_0 block is 22 bytes (5.5 bpw)");

void pack(const uint8_t* L, BlockQ5_0& b) {
  uint32_t qh = 0;
  for (int j = 0; j < kBlock / 2; ++j) {
    b.qs[j] = static_cast<uint8_t>((L[j] & 0x0F) | ((L[j + 16] & 0x0F) << 4));
    qh |= static_cast<uint32_t>((L[j] & 0x10) >> 4) << j;
    qh |= static_cast<uint32_t>((L[j + 16] & 0x10) >> 4) << (j + 16);
  }
  std::memcpy(b.qh, &qh, 4);
}

void quantize_row(const float* x, const float* importance, int64_t n, uint8_t* out) {
  float sigma2 = 0;
  if (importance) {
    for (int64_t j = 0; j < n; ++j) sigma2 += x[j] * x[j];
    sigma2 /= n;
  }
  for (int64_t ib = 0; ib < n / kBlock; ++ib) {
    const float* xb = x + ib * kBlock;
    BlockQ5_0 b{};
    uint8_t L[kBlock];
    if (importance) {
      float w[kBlock];
      int8_t Ls[kBlock];
      const float* qw = importance + ib * kBlock;
      for (int j = 0; j < kBlock; ++j) w[j] = qw[j] * std::sqrt(sigma2 + xb[j] * xb[j]);
      b.d = f2h(symmetric_scale_search(kBlock, 16, xb, Ls, w));
      for (int j = 0; j < kBlock; ++j) L[j] = static_cast<uint8_t>(Ls[j]);
    } else {
      float amax = 0, max = 0;
      for (int j = 0; j < kBlock; ++j) {
        if (amax < std::fabs(xb[j])) {
          amax = std::fabs(xb[j]);
          max = xb[j];
        }
      }
      const float d = max / -16;
      const float id = d ? 1.0f / d : 0.0f;
      b.d = f2h(d);
      for (int j = 0; j < kBlock; ++j) {
        L[j] = static_cast<uint8_t>(std::min(31, static_cast<int>(static_cast<int8_t>(xb[j] * id + 16.5f))));
      }
    }
    pack(L, b);
    store_block(b, out + ib * sizeof(BlockQ5_0));
  }
}

void dequantize_row(const uint8_t* in, int64_t n, float* out) {
  for (int64_t ib = 0; ib < n / kBlock; ++ib) {
    const auto b = load_block<BlockQ5_0>(in + ib * sizeof(BlockQ5_0));
    const float d = h2f(b.d);
    uint32_t qh;
    std::memcpy(&qh, b.qh, 4);
    float* y = out + ib * kBlock;
    for (int j = 0; j < kBlock / 2; ++j) {
      const int x0 = ((b.qs[j] & 0x0F) | (((qh >> j) << 4) & 0x10)) - 16;
      const int x1 = ((b.qs[j] >> 4) | ((qh >> (j + 12)) & 0x10)) - 16;
      y[j] = x0 * d;
      y[j + 16] = x1 * d;
    }
  }
}

}  // namespace

Format q5_0_format() {
  return block_format<BlockQ5_0, kBlock, quantize_row, dequantize_row>(
      "q5_0", 6, FormatKind::kLegacy, true, {0.055, 0.095, 0.01},
      "ggml Q5_0: 32-blocks, fp16 scale, 5-bit symmetric");
}

}  // namespace lowbit::formats
