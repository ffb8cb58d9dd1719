// q5_1 (ggml type 7): blocks of 32, fp16 scale and min, 5-bit levels 0..31. Encoding
// matches ggml byte for byte; with importance weights it searches scale and min.
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
    BlockQ5_1 b{};
    uint8_t L[kBlock];
    float d, min;
    if (importance) {
      float w[kBlock];
      importance_weights(xb, importance + ib * kBlock, sigma2, kBlock, w);
      d = affine_scale_search(kBlock, 31, xb, w, L, &min, -0.9f, 0.05f, 36, false);
      min = -min;  // the search returns the magnitude of a non-positive min
    } else {
      d = minmax_levels(xb, kBlock, 31, L, &min);
    }
    b.d = f2h(d);
    b.m = f2h(min);
    pack_5bit(L, b.qs, b.qh);
    store_block(b, out + ib * sizeof(BlockQ5_1));
  }
}

void dequantize_row(const uint8_t* in, int64_t n, float* out) {
  for (int64_t ib = 0; ib < n / kBlock; ++ib) {
    const auto b = load_block<BlockQ5_1>(in + ib * sizeof(BlockQ5_1));
    const float d = h2f(b.d), m = h2f(b.m);
    uint32_t qh;
    std::memcpy(&qh, b.qh, 4);
    for (int j = 0; j < kBlock; ++j) out[ib * kBlock + j] = unpack_5bit(b.qs, qh, j) * d + m;
  }
}

}  // namespace

Format q5_1_format() {
  return block_format<BlockQ5_1, kBlock, quantize_row, dequantize_row>(
      "q5_1", 7, FormatKind::kLegacy, true, {0.05, 0.07, 0.01},
      "ggml Q5_1: 32-blocks, fp16 scale and min, 5-bit affine");
}

}  // namespace lowbit::formats
