// q5_0 (ggml type 6): blocks of 32, fp16 scale, 5-bit levels -16..15 (4 low bits in qs,
// the fifth in a 32-bit mask). Encoding matches ggml byte for byte.
#include "formats/format_impl.h"
#include "formats/blocks.h"
#include "formats/formats.h"
#include "formats/legacy_quant.h"
#include "formats/scale_search.h"

namespace lowbit::formats {
namespace {

constexpr int kBlock = 32;


void quantize_row(const float* x, const float* importance, int64_t n, uint8_t* out) {
  const float sigma2 = importance ? mean_square(x, n) : 0.0f;
  for (int64_t ib = 0; ib < n / kBlock; ++ib) {
    const float* xb = x + ib * kBlock;
    BlockQ5_0 b{};
    uint8_t L[kBlock];
    if (importance) {
      float w[kBlock];
      importance_weights(xb, importance + ib * kBlock, sigma2, kBlock, w);
      b.d = f2h(symmetric_scale_search(kBlock, 16, xb, reinterpret_cast<int8_t*>(L), w));
    } else {
      b.d = f2h(absmax_levels(xb, kBlock, 16, L));
    }
    pack_5bit(L, b.qs, b.qh);
    store_block(b, out + ib * sizeof(BlockQ5_0));
  }
}

void dequantize_row(const uint8_t* in, int64_t n, float* out) {
  for (int64_t ib = 0; ib < n / kBlock; ++ib) {
    const auto b = load_block<BlockQ5_0>(in + ib * sizeof(BlockQ5_0));
    const float d = h2f(b.d);
    uint32_t qh;
    std::memcpy(&qh, b.qh, 4);
    for (int j = 0; j < kBlock; ++j) out[ib * kBlock + j] = (unpack_5bit(b.qs, qh, j) - 16) * d;
  }
}

}  // namespace

Format q5_0_format() {
  return block_format<BlockQ5_0, kBlock, quantize_row, dequantize_row>(
      "q5_0", 6, FormatKind::kLegacy, true, {0.055, 0.095, 0.01},
      "ggml Q5_0: 32-blocks, fp16 scale, 5-bit symmetric");
}

}  // namespace lowbit::formats
