// q5_k (ggml type 13): super-blocks of 256 = 8 sub-blocks of 32; 5-bit levels (low 4 in
// qs, the fifth in qh) with 6-bit sub-scales and sub-mins, fp16 super-scales.
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
  BlockQ5_K b{};
  b.d = s.d;
  b.dmin = s.dmin;
  std::memcpy(b.scales, s.scales, 12);
  for (int c = 0; c < kSuper / 64; ++c) {
    for (int l = 0; l < 32; ++l) {
      const int l1 = s.L[64 * c + l], l2 = s.L[64 * c + 32 + l];
      b.qs[32 * c + l] = static_cast<uint8_t>((l1 & 0xF) | ((l2 & 0xF) << 4));
      b.qh[l] = static_cast<uint8_t>(b.qh[l] | ((l1 >> 4) << (2 * c)) | ((l2 >> 4) << (2 * c + 1)));
    }
  }
  store_block(b, out);
}

void quantize_block(const float* x, const float* importance, uint8_t* out) {
  pack_block(quantize_affine_superblock(x, importance, 31), out);
}

void quantize_row(const float* x, const float* importance, int64_t n, uint8_t* out) {
  AffineSuperBlock s[kAffineBatch];
  for (int64_t i = 0; i < n / kSuper; i += kAffineBatch) {
    const int count = static_cast<int>(std::min<int64_t>(kAffineBatch, n / kSuper - i));
    quantize_affine_superblocks(x + i * kSuper, importance ? importance + i * kSuper : nullptr, 31, count, s);
    for (int k = 0; k < count; ++k) pack_block(s[k], out + (i + k) * sizeof(BlockQ5_K));
  }
}

// Fit: the super-block as quantize makes it. Round: element e's level from the stored
// sub-scale and sub-min, as quantize derives its final levels (a zero sub-scale keeps it).
void fit(const float* x, int64_t, const float* importance, float, uint8_t* block, float*) {
  quantize_block(x, importance, block);
}

float round(uint8_t* block, const float*, int64_t, int64_t e, float x) {
  uint8_t sc, m;
  unpack_scale_min_k4(block + offsetof(BlockQ5_K, scales), static_cast<int>(e / 32), &sc, &m);
  const float d = load_half(block + offsetof(BlockQ5_K, d)) * sc, dm = load_half(block + offsetof(BlockQ5_K, dmin)) * m;
  const int c = static_cast<int>(e / 64), upper = (e % 64) < 32 ? 0 : 1;
  uint8_t* q = block + offsetof(BlockQ5_K, qs) + 32 * c + e % 32;
  uint8_t* h = block + offsetof(BlockQ5_K, qh) + e % 32;
  if (d) {
    const int l = nearest_int_clamped((x + dm) / d, 0, 31);
    set_bits(q, 4 * upper, 4, l & 0xF);
    set_bits(h, 2 * c + upper, 1, l >> 4);
  }
  return d * (get_bits(q, 4 * upper, 4) + (get_bits(h, 2 * c + upper, 1) ? 16 : 0)) - dm;
}

constexpr FitRound kFitRound{0, &fit, &round};

void dequantize_row(const uint8_t* in, int64_t n, float* out) {
  for (int64_t i = 0; i < n / kSuper; ++i) {
    const auto b = load_block<BlockQ5_K>(in + i * sizeof(BlockQ5_K));
    const float d = h2f(b.d), dmin = h2f(b.dmin);
    float* y = out + i * kSuper;
    for (int c = 0; c < kSuper / 64; ++c) {
      uint8_t sc, m;
      unpack_scale_min_k4(b.scales, 2 * c, &sc, &m);
      const float d1 = d * sc, m1 = dmin * m;
      unpack_scale_min_k4(b.scales, 2 * c + 1, &sc, &m);
      const float d2 = d * sc, m2 = dmin * m;
      const uint8_t* ql = b.qs + 32 * c;
      const int u1 = 1 << (2 * c), u2 = 2 << (2 * c);
      for (int l = 0; l < 32; ++l) *y++ = d1 * ((ql[l] & 0xF) + (b.qh[l] & u1 ? 16 : 0)) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * ((ql[l] >> 4) + (b.qh[l] & u2 ? 16 : 0)) - m2;
    }
  }
}

}  // namespace

Format q5_k_format() {
  return block_format<BlockQ5_K, kSuper, quantize_row, dequantize_row>(
      "q5_k", 13, FormatKind::kKQuant, true, {0.046, 0.07, 0.05},
      "ggml Q5_K: 256-superblocks, 8x32 sub-blocks with 6-bit scale+min, 5-bit levels", &kFitRound);
}

}  // namespace lowbit::formats
