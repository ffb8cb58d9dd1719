// q4_0 (ggml type 2): blocks of 32, one fp16 scale, 4-bit levels -8..7. Encoding matches
// ggml byte for byte; with importance weights it searches the scale (as ggml does).
#include <cstddef>

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

// Fit: the block as quantize makes it, and how it rounds: aux = {inverse scale, rule},
// rule 0 ggml's plain min(15, (int8)(x/d + 8.5)), rule 1 the importance search's
// nearest_int(iscale·x) + 8. A zero scale keeps the code (every value decodes to 0).
void fit(const float* x, int64_t, const float* importance, float row_mean_square, uint8_t* block, float* aux) {
  BlockQ4_0 b{};
  uint8_t L[kBlock];
  if (importance) {
    float w[kBlock];
    importance_weights(x, importance, row_mean_square, kBlock, w);
    b.d = f2h(symmetric_scale_search(kBlock, 8, x, reinterpret_cast<int8_t*>(L), w, ElementWeight::kSquare, &aux[0]));
    aux[1] = 1;
  } else {
    const float d = absmax_levels(x, kBlock, 8, L);
    b.d = f2h(d);
    aux[0] = d ? 1.0f / d : 0.0f;
    aux[1] = 0;
  }
  for (int j = 0; j < kBlock / 2; ++j) b.qs[j] = static_cast<uint8_t>(L[j] | (L[j + 16] << 4));
  store_block(b, block);
}

float round(uint8_t* block, const float* aux, int64_t, int64_t i, float x) {
  const float d = load_half(block + offsetof(BlockQ4_0, d));
  uint8_t* q = block + offsetof(BlockQ4_0, qs) + i % 16;
  const int shift = i < 16 ? 0 : 4;
  if (d) {
    const float v = std::clamp(x * aux[0], -9.0f, 9.0f);
    set_bits(q, shift, 4, aux[1] == 0 ? std::clamp(static_cast<int>(v + 8.5f), 0, 15) : nearest_int_clamped(v, -8, 7) + 8);
  }
  return (get_bits(q, shift, 4) - 8) * d;
}

constexpr FitRound kFitRound{2, &fit, &round};

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
      "ggml Q4_0: 32-blocks, fp16 scale, 4-bit symmetric", &kFitRound);
}

}  // namespace lowbit::formats
