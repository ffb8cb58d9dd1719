// iq4_nl (ggml type 20): blocks of 32, fp16 scale, 4-bit indices into a fixed non-linear
// grid (kIq4Grid). Value = d * grid[q].
#include <cstddef>

#include "formats/format_impl.h"
#include "formats/blocks.h"
#include "formats/formats.h"
#include "formats/iq4_search.h"
#include "formats/scale_search.h"

namespace lowbit::formats {
namespace {

constexpr int kBlock = 32;


// One block; returns the unrounded 1/d its indices are chosen with (0 for a zero block).
float quantize_block(const float* xb, const float* importance, uint8_t* out) {
  float w[kBlock];
  if (importance) {
    importance_weights(xb, importance, 2 * mean_square(xb, kBlock), kBlock, w);
  } else {
    for (int j = 0; j < kBlock; ++j) w[j] = xb[j] * xb[j];
  }
  uint8_t L[kBlock];
  const float d = iq4_block_scale(kBlock, xb, w, 7, L);
  BlockIq4Nl b{};
  b.d = f2h(d);
  const float id = d != 0 ? 1 / d : 0.0f;
  if (d != 0) {
    // Re-assign indices with the final scale.
    for (int j = 0; j < kBlock; ++j) L[j] = static_cast<uint8_t>(nearest_grid_index(kIq4Grid, id * xb[j]));
  }
  for (int j = 0; j < kBlock / 2; ++j) b.qs[j] = static_cast<uint8_t>(L[j] | (L[j + 16] << 4));
  store_block(b, out);
  return id;
}

void quantize_row(const float* x, const float* importance, int64_t n, uint8_t* out) {
  for (int64_t ib = 0; ib < n / kBlock; ++ib) {
    quantize_block(x + ib * kBlock, importance ? importance + ib * kBlock : nullptr, out + ib * sizeof(BlockIq4Nl));
  }
}

// Fit: the block as quantize makes it, aux[0] the 1/d it assigns indices with. Round: the
// grid index nearest x/d (a zero scale keeps the index).
void fit(const float* x, int64_t, const float* importance, float, uint8_t* block, float* aux) {
  aux[0] = quantize_block(x, importance, block);
}

float round(uint8_t* block, const float* aux, int64_t, int64_t i, float x) {
  uint8_t* q = block + offsetof(BlockIq4Nl, qs) + i % 16;
  const int shift = i < 16 ? 0 : 4;
  if (aux[0] != 0) set_bits(q, shift, 4, nearest_grid_index(kIq4Grid, aux[0] * x));
  return load_half(block + offsetof(BlockIq4Nl, d)) * kIq4Grid[get_bits(q, shift, 4)];
}

constexpr FitRound kFitRound{1, &fit, &round};

void dequantize_row(const uint8_t* in, int64_t n, float* out) {
  for (int64_t ib = 0; ib < n / kBlock; ++ib) {
    const auto b = load_block<BlockIq4Nl>(in + ib * sizeof(BlockIq4Nl));
    const float d = h2f(b.d);
    float* y = out + ib * kBlock;
    for (int j = 0; j < kBlock / 2; ++j) {
      y[j] = d * kIq4Grid[b.qs[j] & 0xF];
      y[j + 16] = d * kIq4Grid[b.qs[j] >> 4];
    }
  }
}

}  // namespace

Format iq4_nl_format() {
  return block_format<BlockIq4Nl, kBlock, quantize_row, dequantize_row>(
      "iq4_nl", 20, FormatKind::kNonLinear, true, {0.098, 0.15, 0.05},
      "ggml IQ4_NL: 32-blocks, fp16 scale, 4-bit indices into a non-linear grid", &kFitRound);
}

}  // namespace lowbit::formats
