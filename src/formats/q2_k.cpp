// q2_k (ggml type 10): super-blocks of 256 = 16 sub-blocks of 16; 2-bit levels with a
// 4-bit scale and 4-bit min per sub-block, fp16 super-scales d and dmin.
#include <cstddef>

#include "formats/format_impl.h"
#include "formats/blocks.h"
#include "formats/formats.h"
#include "formats/scale_search.h"

namespace lowbit::formats {
namespace {

constexpr int kSuper = 256;


// Re-derives levels from the stored (quantized) scales and packs them.
void finish_block(const float* x, uint8_t* L, BlockQ2_K& b) {
  const float d_all = h2f(b.d), m_all = h2f(b.dmin);
  for (int j = 0; j < kSuper / 16; ++j) {
    const float d = d_all * (b.scales[j] & 0xF);
    if (!d) continue;
    const float m = m_all * (b.scales[j] >> 4);
    for (int i = 0; i < 16; ++i) {
      L[16 * j + i] = static_cast<uint8_t>(std::clamp(nearest_int((x[16 * j + i] + m) / d), 0, 3));
    }
  }
  for (int j = 0; j < kSuper; j += 128) {
    for (int l = 0; l < 32; ++l) {
      b.qs[j / 4 + l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 2) |
                                             (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
    }
  }
}

void quantize_block_plain(const float* x, BlockQ2_K& b) {
  uint8_t L[kSuper];
  float scales[16], mins[16], weights[16];
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < 16; ++j) {
    for (int l = 0; l < 16; ++l) weights[l] = std::fabs(x[16 * j + l]);
    scales[j] = affine_scale_search(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], -0.5f, 0.1f,
                                    15, true);
    max_scale = std::max(max_scale, scales[j]);
    max_min = std::max(max_min, mins[j]);
  }
  b = BlockQ2_K{};
  if (max_scale > 0) {
    const float iscale = 15.f / max_scale;
    for (int j = 0; j < 16; ++j) b.scales[j] = static_cast<uint8_t>(nearest_int(iscale * scales[j]));
    b.d = f2h(max_scale / 15.f);
  }
  if (max_min > 0) {
    const float iscale = 15.f / max_min;
    for (int j = 0; j < 16; ++j) b.scales[j] |= static_cast<uint8_t>(nearest_int(iscale * mins[j]) << 4);
    b.dmin = f2h(max_min / 15.f);
  }
  finish_block(x, L, b);
}

void quantize_block_weighted(const float* x, const float* qw, BlockQ2_K& b) {
  uint8_t L[kSuper], Ls[16], Lm[16];
  float scales[16], mins[16], sw[16], weights[16];
  const float sigma2 = mean_square(x, kSuper);
  for (int j = 0; j < 16; ++j) {
    importance_weights(x + 16 * j, qw + 16 * j, sigma2, 16, weights);
    sw[j] = 0;
    for (int l = 0; l < 16; ++l) sw[j] += weights[l];
    scales[j] = affine_scale_search(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], -0.9f, 0.05f,
                                    36, false);
  }
  b = BlockQ2_K{};
  b.d = f2h(positive_scale_search(16, 15, scales, Ls, sw));
  b.dmin = f2h(positive_scale_search(16, 15, mins, Lm, sw));
  for (int j = 0; j < 16; ++j) b.scales[j] = static_cast<uint8_t>(Ls[j] | (Lm[j] << 4));
  finish_block(x, L, b);
}


// Fit: the super-block as quantize makes it. Round: element e's level from the stored
// sub-scale and sub-min, as finish_block derives it (a zero sub-scale keeps it).
void fit(const float* x, int64_t, const float* importance, float, uint8_t* block, float*) {
  BlockQ2_K b;
  if (importance) {
    quantize_block_weighted(x, importance, b);
  } else {
    quantize_block_plain(x, b);
  }
  store_block(b, block);
}

float round(uint8_t* block, const float*, int64_t, int64_t e, float x) {
  const uint8_t sc = block[offsetof(BlockQ2_K, scales) + e / 16];
  const float d = load_half(block + offsetof(BlockQ2_K, d)) * (sc & 0xF);
  const float m = load_half(block + offsetof(BlockQ2_K, dmin)) * (sc >> 4);
  const int within = static_cast<int>(e % 128), shift = 2 * (within / 32);
  uint8_t* q = block + offsetof(BlockQ2_K, qs) + 32 * (e / 128) + within % 32;
  if (d) set_bits(q, shift, 2, nearest_int_clamped((x + m) / d, 0, 3));
  return d * get_bits(q, shift, 2) - m;
}

constexpr FitRound kFitRound{0, &fit, &round};

void quantize_row(const float* x, const float* importance, int64_t n, uint8_t* out) {
  for (int64_t i = 0; i < n / kSuper; ++i) {
    fit(x + i * kSuper, kSuper, importance ? importance + i * kSuper : nullptr, 0.0f, out + i * sizeof(BlockQ2_K), nullptr);
  }
}

void dequantize_row(const uint8_t* in, int64_t n, float* out) {
  for (int64_t i = 0; i < n / kSuper; ++i) {
    const auto b = load_block<BlockQ2_K>(in + i * sizeof(BlockQ2_K));
    const float d = h2f(b.d), dmin = h2f(b.dmin);
    float* y = out + i * kSuper;
    const uint8_t* q = b.qs;
    int is = 0;
    for (int half = 0; half < 2; ++half) {
      for (int shift = 0; shift < 8; shift += 2) {
        for (int part = 0; part < 2; ++part) {
          const uint8_t sc = b.scales[is++];
          const float dl = d * (sc & 0xF), ml = dmin * (sc >> 4);
          for (int l = 0; l < 16; ++l) *y++ = dl * ((q[l + 16 * part] >> shift) & 3) - ml;
        }
      }
      q += 32;
    }
  }
}

}  // namespace

Format q2_k_format() {
  return block_format<BlockQ2_K, kSuper, quantize_row, dequantize_row>(
      "q2_k", 10, FormatKind::kKQuant, true, {0.38, 0.5, 0.05},
      "ggml Q2_K: 256-superblocks, 16x16 sub-blocks with 4-bit scale+min, 2-bit levels", &kFitRound);
}

}  // namespace lowbit::formats
