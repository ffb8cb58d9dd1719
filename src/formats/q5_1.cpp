// q5_1 (ggml type 7): blocks of 32, fp16 scale and min, 5-bit levels 0..31. Encoding
// matches ggml byte for byte; with importance weights it searches scale and min.
#include "formats/format_impl.h"
#include "formats/formats.h"
#include "formats/scale_search.h"

namespace lowbit::formats {
namespace {

constexpr int kBlock = 32;

struct BlockQ5_1 {
  uint16_t d;              // fp16 scale
  uint16_t m;              // fp16 min; value = q * d + m
  uint8_t qh[4];           // bit j: fifth bit of element j
  uint8_t qs[kBlock / 2];  // low nibbles: element j (low), element j+16 (high)
};
static_assert(sizeof(BlockQ5_1) == 24, "q5_1 block is 24 bytes (6.0 bpw)");

void quantize_row(const float* x, const float* importance, int64_t n, uint8_t* out) {
  float sigma2 = 0;
  if (importance) {
    for (int64_t j = 0; j < n; ++j) sigma2 += x[j] * x[j];
    sigma2 /= n;
  }
  for (int64_t ib = 0; ib < n / kBlock; ++ib) {
    const float* xb = x + ib * kBlock;
    BlockQ5_1 b{};
    uint8_t L[kBlock];
    if (importance) {
      float w[kBlock];
      const float* qw = importance + ib * kBlock;
      for (int j = 0; j < kBlock; ++j) w[j] = qw[j] * std::sqrt(sigma2 + xb[j] * xb[j]);
      float neg_min;
      const float d = affine_scale_search(kBlock, 31, xb, w, L, &neg_min, -0.9f, 0.05f, 36, false);
      b.d = f2h(d);
      b.m = f2h(-neg_min);
    } else {
      float min = xb[0], max = xb[0];
      for (int j = 1; j < kBlock; ++j) {
        min = std::min(min, xb[j]);
        max = std::max(max, xb[j]);
      }
      const float d = (max - min) / 31;
      const float id = d ? 1.0f / d : 0.0f;
      b.d = f2h(d);
      b.m = f2h(min);
      for (int j = 0; j < kBlock; ++j) L[j] = static_cast<uint8_t>((xb[j] - min) * id + 0.5f);
    }
    uint32_t qh = 0;
    for (int j = 0; j < kBlock / 2; ++j) {
      b.qs[j] = static_cast<uint8_t>((L[j] & 0x0F) | ((L[j + 16] & 0x0F) << 4));
      qh |= static_cast<uint32_t>((L[j] & 0x10) >> 4) << j;
      qh |= static_cast<uint32_t>((L[j + 16] & 0x10) >> 4) << (j + 16);
    }
    std::memcpy(b.qh, &qh, 4);
    store_block(b, out + ib * sizeof(BlockQ5_1));
  }
}

void dequantize_row(const uint8_t* in, int64_t n, float* out) {
  for (int64_t ib = 0; ib < n / kBlock; ++ib) {
    const auto b = load_block<BlockQ5_1>(in + ib * sizeof(BlockQ5_1));
    const float d = h2f(b.d), m = h2f(b.m);
    uint32_t qh;
    std::memcpy(&qh, b.qh, 4);
    float* y = out + ib * kBlock;
    for (int j = 0; j < kBlock / 2; ++j) {
      const int x0 = (b.qs[j] & 0x0F) | (((qh >> j) << 4) & 0x10);
      const int x1 = (b.qs[j] >> 4) | ((qh >> (j + 12)) & 0x10);
      y[j] = x0 * d + m;
      y[j + 16] = x1 * d + m;
    }
  }
}

}  // namespace

Format q5_1_format() {
  return block_format<BlockQ5_1, kBlock, quantize_row, dequantize_row>(
      "q5_1", 7, FormatKind::kLegacy, true, {0.05, 0.07, 0.01},
      "ggml Q5_1: 32-blocks, fp16 scale and min, 5-bit affine");
}

}  // namespace lowbit::formats
