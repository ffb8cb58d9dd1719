// q3_k (ggml type 11): super-blocks of 256 = 16 sub-blocks of 16; 3-bit levels (2 low
// bits in qs, the high bit in hmask) with signed 6-bit sub-scales and one fp16 scale.
#include <cstddef>

#include "formats/format_impl.h"
#include "formats/blocks.h"
#include "formats/formats.h"
#include "formats/kquant_scales.h"
#include "formats/scale_search.h"

namespace lowbit::formats {
namespace {

constexpr int kSuper = 256;


void set_scale(uint8_t* scales, int j, int l) {  // l in 0..63
  if (j < 8) {
    scales[j] = static_cast<uint8_t>(scales[j] | (l & 0xF));
  } else {
    scales[j - 8] = static_cast<uint8_t>(scales[j - 8] | ((l & 0xF) << 4));
  }
  scales[j % 4 + 8] = static_cast<uint8_t>(scales[j % 4 + 8] | ((l >> 4) << (2 * (j / 4))));
}


// Re-derives the levels from the stored scales and packs them.
void finish_block(const float* x, BlockQ3_K& b) {
  int8_t L[kSuper] = {};
  const float d_all = h2f(b.d);
  for (int j = 0; j < 16; ++j) {
    const float d = d_all * q3_k_scale(b.scales, j);
    if (!d) {
      // ggml leaves the search's levels here; a zero scale decodes to 0 whatever they are.
      for (int i = 0; i < 16; ++i) L[16 * j + i] = 4;
      continue;
    }
    for (int i = 0; i < 16; ++i) {
      L[16 * j + i] = static_cast<int8_t>(std::clamp(nearest_int(x[16 * j + i] / d), -4, 3) + 4);
    }
  }
  std::memset(b.hmask, 0, sizeof(b.hmask));
  for (int j = 0; j < kSuper; ++j) {
    if (L[j] > 3) {
      b.hmask[j % 32] = static_cast<uint8_t>(b.hmask[j % 32] | (1 << (j / 32)));
      L[j] = static_cast<int8_t>(L[j] - 4);
    }
  }
  for (int j = 0; j < kSuper; j += 128) {
    for (int l = 0; l < 32; ++l) {
      b.qs[j / 4 + l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 2) |
                                             (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
    }
  }
}

void quantize_block_plain(const float* x, BlockQ3_K& b) {
  int8_t L[kSuper];
  float scales[16];
  float max_scale = 0, amax = 0;
  for (int j = 0; j < 16; ++j) {
    scales[j] = symmetric_scale_refine(16, 4, x + 16 * j, L + 16 * j);
    if (std::fabs(scales[j]) > amax) {
      amax = std::fabs(scales[j]);
      max_scale = scales[j];
    }
  }
  b = BlockQ3_K{};
  if (max_scale) {
    const float iscale = -32.f / max_scale;
    for (int j = 0; j < 16; ++j) {
      set_scale(b.scales, j, std::clamp(nearest_int(iscale * scales[j]), -32, 31) + 32);
    }
    b.d = f2h(1 / iscale);
  }
  finish_block(x, b);
}

void quantize_block_weighted(const float* x, const float* qw, BlockQ3_K& b) {
  int8_t L[kSuper], Ls[16];
  float scales[16], sw[16], weights[16];
  const float sigma2 = 2 * mean_square(x, kSuper);
  for (int j = 0; j < 16; ++j) {
    importance_weights(x + 16 * j, qw + 16 * j, sigma2, 16, weights);
    sw[j] = 0;
    for (int l = 0; l < 16; ++l) sw[j] += weights[l];
    scales[j] = symmetric_scale_search(16, 4, x + 16 * j, L + 16 * j, weights);
  }
  b = BlockQ3_K{};
  const float d_block = symmetric_scale_search(16, 32, scales, Ls, sw);
  for (int j = 0; j < 16; ++j) set_scale(b.scales, j, Ls[j]);
  b.d = f2h(d_block);
  finish_block(x, b);
}


// Fit: the super-block as quantize makes it. Round: element e's level from the stored
// scale and sub-scale, as finish_block derives it (a zero sub-scale keeps level 4, i.e. 0).
void fit(const float* x, int64_t, const float* importance, float, uint8_t* block, float*) {
  BlockQ3_K b;
  if (importance) {
    quantize_block_weighted(x, importance, b);
  } else {
    quantize_block_plain(x, b);
  }
  store_block(b, block);
}

float round(uint8_t* block, const float*, int64_t, int64_t e, float x) {
  const float dl = load_half(block + offsetof(BlockQ3_K, d)) * q3_k_scale(block + offsetof(BlockQ3_K, scales), static_cast<int>(e / 16));
  const int within = static_cast<int>(e % 128), l = within % 32, shift = 2 * (within / 32);
  uint8_t* q = block + offsetof(BlockQ3_K, qs) + 32 * (e / 128) + l;
  uint8_t* h = block + offsetof(BlockQ3_K, hmask) + e % 32;
  if (dl) {
    const int level = nearest_int_clamped(x / dl, -4, 3) + 4;
    set_bits(q, shift, 2, level & 3);
    set_bits(h, static_cast<int>(e / 32), 1, level > 3 ? 1 : 0);
  }
  return dl * (get_bits(q, shift, 2) - (get_bits(h, static_cast<int>(e / 32), 1) ? 0 : 4));
}

constexpr FitRound kFitRound{0, &fit, &round};

void quantize_row(const float* x, const float* importance, int64_t n, uint8_t* out) {
  for (int64_t i = 0; i < n / kSuper; ++i) {
    fit(x + i * kSuper, kSuper, importance ? importance + i * kSuper : nullptr, 0.0f, out + i * sizeof(BlockQ3_K), nullptr);
  }
}

void dequantize_row(const uint8_t* in, int64_t n, float* out) {
  for (int64_t i = 0; i < n / kSuper; ++i) {
    const auto b = load_block<BlockQ3_K>(in + i * sizeof(BlockQ3_K));
    const float d_all = h2f(b.d);
    float* y = out + i * kSuper;
    for (int j = 0; j < kSuper; ++j) {
      // element j: chunk j/128, shift 2*((j%128)/32), byte l = j%32
      const int chunk = j / 128, within = j % 128;
      const int shift = 2 * (within / 32), l = within % 32;
      const int low = (b.qs[32 * chunk + l] >> shift) & 3;
      const int high = (b.hmask[l] >> (j / 32)) & 1;
      const float dl = d_all * q3_k_scale(b.scales, j / 16);
      y[j] = dl * (low - (high ? 0 : 4));
    }
  }
}

}  // namespace

Format q3_k_format() {
  return block_format<BlockQ3_K, kSuper, quantize_row, dequantize_row>(
      "q3_k", 11, FormatKind::kKQuant, true, {0.19, 0.27, 0.05},
      "ggml Q3_K: 256-superblocks, 16x16 sub-blocks with 6-bit scales, 3-bit levels", &kFitRound);
}

}  // namespace lowbit::formats
