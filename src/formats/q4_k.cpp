// q4_k (ggml type 12): super-blocks of 256 = 8 sub-blocks of 32; 4-bit levels with 6-bit
// sub-scales and sub-mins, fp16 super-scales d and dmin.
#include <cstddef>

#include "formats/format_impl.h"
#include "formats/blocks.h"
#include "formats/formats.h"
#include "formats/kquant_affine.h"
#include "formats/kquant_scales.h"

namespace lowbit::formats {
namespace {

constexpr int kSuper = 256;


// The block's bytes from its searched super-block.
void pack_block(const AffineSuperBlock& s, uint8_t* out) {
  BlockQ4_K b{};
  b.d = s.d;
  b.dmin = s.dmin;
  std::memcpy(b.scales, s.scales, 12);
  for (int j = 0; j < kSuper; j += 64) {
    for (int l = 0; l < 32; ++l) {
      b.qs[j / 2 + l] = static_cast<uint8_t>(s.L[j + l] | (s.L[j + l + 32] << 4));
    }
  }
  store_block(b, out);
}

void quantize_block(const float* x, const float* importance, uint8_t* out) {
  pack_block(quantize_affine_superblock(x, importance, 15), out);
}

void quantize_row(const float* x, const float* importance, int64_t n, uint8_t* out) {
  AffineSuperBlock s[kAffineBatch];
  for (int64_t i = 0; i < n / kSuper; i += kAffineBatch) {
    const int count = static_cast<int>(std::min<int64_t>(kAffineBatch, n / kSuper - i));
    quantize_affine_superblocks(x + i * kSuper, importance ? importance + i * kSuper : nullptr, 15, count, s);
    for (int k = 0; k < count; ++k) pack_block(s[k], out + (i + k) * sizeof(BlockQ4_K));
  }
}

// Fit: the super-block as quantize makes it. Round: element e's level from the stored
// sub-scale and sub-min, as quantize derives its final levels (a zero sub-scale keeps it).
void fit(const float* x, int64_t, const float* importance, float, uint8_t* block, float*) {
  quantize_block(x, importance, block);
}

float round(uint8_t* block, const float*, int64_t, int64_t e, float x) {
  uint8_t sc, m;
  unpack_scale_min_k4(block + offsetof(BlockQ4_K, scales), static_cast<int>(e / 32), &sc, &m);
  const float d = load_half(block + offsetof(BlockQ4_K, d)) * sc, dm = load_half(block + offsetof(BlockQ4_K, dmin)) * m;
  uint8_t* q = block + offsetof(BlockQ4_K, qs) + 32 * (e / 64) + e % 32;
  const int shift = (e % 64) < 32 ? 0 : 4;
  if (d) set_bits(q, shift, 4, nearest_int_clamped((x + dm) / d, 0, 15));
  return d * get_bits(q, shift, 4) - dm;
}

constexpr FitRound kFitRound{0, &fit, &round};

void dequantize_row(const uint8_t* in, int64_t n, float* out) {
  for (int64_t i = 0; i < n / kSuper; ++i) {
    const auto b = load_block<BlockQ4_K>(in + i * sizeof(BlockQ4_K));
    const float d = h2f(b.d), dmin = h2f(b.dmin);
    float* y = out + i * kSuper;
    for (int j = 0; j < kSuper / 64; ++j) {
      uint8_t sc, m;
      unpack_scale_min_k4(b.scales, 2 * j, &sc, &m);
      const float d1 = d * sc, m1 = dmin * m;
      unpack_scale_min_k4(b.scales, 2 * j + 1, &sc, &m);
      const float d2 = d * sc, m2 = dmin * m;
      const uint8_t* q = b.qs + 32 * j;
      for (int l = 0; l < 32; ++l) *y++ = d1 * (q[l] & 0xF) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * (q[l] >> 4) - m2;
    }
  }
}

}  // namespace

Format q4_k_format() {
  return block_format<BlockQ4_K, kSuper, quantize_row, dequantize_row>(
      "q4_k", 12, FormatKind::kKQuant, true, {0.092, 0.135, 0.05},
      "ggml Q4_K: 256-superblocks, 8x32 sub-blocks with 6-bit scale+min, 4-bit levels", &kFitRound);
}

}  // namespace lowbit::formats
