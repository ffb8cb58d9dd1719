// q4_0 (ggml type 2): blocks of 32, one fp16 scale, 4-bit levels -8..7. Encoding matches
// ggml byte for byte; with importance weights it searches the scale (as ggml does).
#include "formats/format_impl.h"
#include "formats/formats.h"
#include "formats/legacy_quant.h"
#include "formats/scale_search.h"

namespace lowbit::formats {
namespace {

constexpr int kBlock = 32;

struct BlockQ4_0 {
  uint16_t d;               // fp16 scale; value = (q - 8) * d
  uint8_t qs[kBlock / 2];   // byte j: element j (low nibble), element j+16 (high nibble)
};
static_assert(sizeof(BlockQ4_0) == 18, "q4_0 block is 18 bytes (4.5 bpw)");

void quantize_row(const float* x, const float* importance, int64_t n, uint8_t* out) {
  const float sigma2 = importance ? mean_square(x, n) : 0.0f;
  for (int64_t ib = 0; ib < n / kBlock; ++ib) {
    const float* xb = x + ib * kBlock;
    BlockQ4_0 b{};
    uint8_t L[kBlock];
    if (importance) {
      float w[kBlock];
      importance_weights(xb, importance + ib * kBlock, sigma2, kBlock, w);
      b.d = f2h(symmetric_scale_search(kBlock, 8, xb, reinterpret_cast<int8_t*>(L), w));
    } else {
      b.d = f2h(absmax_levels(xb, kBlock, 8, L));
    }
    for (int j = 0; j < kBlock / 2; ++j) b.qs[j] = static_cast<uint8_t>(L[j] | (L[j + 16] << 4));
    store_block(b, out + ib * sizeof(BlockQ4_0));
  }
}

void dequantize_row(const uint8_t* in, int64_t n, float* out) {
  for (int64_t ib = 0; ib < n / kBlock; ++ib) {
    const auto b = load_block<BlockQ4_0>(in + ib * sizeof(BlockQ4_0));
    const float d = h2f(b.d);
    float* y = out + ib * kBlock;
    for (int j = 0; j < kBlock / 2; ++j) {
      y[j] = ((b.qs[j] & 0x0F) - 8) * d;
      y[j + 16] = ((b.qs[j] >> 4) - 8) * d;
    }
  }
}

}  // namespace

Format q4_0_format() {
  return block_format<BlockQ4_0, kBlock, quantize_row, dequantize_row>(
      "q4_0", 2, FormatKind::kLegacy, true, {0.11, 0.18, 0.01},
      "ggml Q4_0: 32-blocks, fp16 scale, 4-bit symmetric");
}

}  // namespace lowbit::formats
