// q6_k (ggml type 14): super-blocks of 256 = 16 sub-blocks of 16; 6-bit levels (low 4 in
// ql, high 2 in qh) with signed 8-bit sub-scales and one fp16 scale.
#include <cstddef>

#include "formats/format_impl.h"
#include "formats/blocks.h"
#include "formats/formats.h"
#include "formats/scale_search.h"

namespace lowbit::formats {
namespace {

constexpr int kSuper = 256;


void quantize_block(const float* x, const float* qw, BlockQ6_K& b) {
  int8_t L[kSuper];
  float scales[16];
  float max_scale = 0, max_abs_scale = 0;
  symmetric_scale_search_many(16, 16, 32, x, qw, L, scales);
  for (int ib = 0; ib < 16; ++ib) {
    if (std::fabs(scales[ib]) > max_abs_scale) {
      max_abs_scale = std::fabs(scales[ib]);
      max_scale = scales[ib];
    }
  }
  b = BlockQ6_K{};
  if (max_abs_scale < kGroupMaxEps) return;  // all zero: an all-zero block decodes to 0
  const float iscale = -128.f / max_scale;
  b.d = f2h(1 / iscale);
  for (int ib = 0; ib < 16; ++ib) {
    b.scales[ib] = static_cast<int8_t>(std::min(127, nearest_int(iscale * scales[ib])));
  }
  for (int j = 0; j < 16; ++j) {
    const float d = h2f(b.d) * b.scales[j];
    if (!d) continue;
    for (int i = 0; i < 16; ++i) {
      L[16 * j + i] = static_cast<int8_t>(std::clamp(nearest_int(x[16 * j + i] / d), -32, 31) + 32);
    }
  }
  for (int j = 0; j < kSuper; j += 128) {
    uint8_t* ql = b.ql + j / 2;
    uint8_t* qh = b.qh + j / 4;
    for (int l = 0; l < 32; ++l) {
      const int q1 = L[j + l], q2 = L[j + l + 32], q3 = L[j + l + 64], q4 = L[j + l + 96];
      ql[l] = static_cast<uint8_t>((q1 & 0xF) | ((q3 & 0xF) << 4));
      ql[l + 32] = static_cast<uint8_t>((q2 & 0xF) | ((q4 & 0xF) << 4));
      qh[l] = static_cast<uint8_t>((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
    }
  }
}

void quantize_row(const float* x, const float* importance, int64_t n, uint8_t* out) {
  for (int64_t i = 0; i < n / kSuper; ++i) {
    BlockQ6_K b;
    quantize_block(x + i * kSuper, importance ? importance + i * kSuper : nullptr, b);
    store_block(b, out + i * sizeof(BlockQ6_K));
  }
}

// Fit: the super-block as quantize makes it. Round: element e's level from the stored
// scale and sub-scale, as quantize derives its final levels (a zero sub-scale keeps it).
void fit(const float* x, int64_t, const float* importance, float, uint8_t* block, float*) {
  BlockQ6_K b;
  quantize_block(x, importance, b);
  store_block(b, block);
}

float round(uint8_t* block, const float*, int64_t, int64_t e, float x) {
  const int half = static_cast<int>(e / 128), w = static_cast<int>(e % 128), l = w % 32, part = w / 32;
  const int sub = static_cast<int>(e / 16);
  const float d = load_half(block + offsetof(BlockQ6_K, d));
  const int8_t sc = static_cast<int8_t>(block[offsetof(BlockQ6_K, scales) + sub]);
  // part 0: ql[l] low, 1: ql[l+32] low, 2: ql[l] high, 3: ql[l+32] high; qh[l] bits 2*part.
  uint8_t* ql = block + offsetof(BlockQ6_K, ql) + 64 * half + l + (part % 2) * 32;
  uint8_t* qh = block + offsetof(BlockQ6_K, qh) + 32 * half + l;
  const int lshift = part < 2 ? 0 : 4;
  const float dl = d * sc;
  if (dl) {
    const int level = nearest_int_clamped(x / dl, -32, 31) + 32;
    set_bits(ql, lshift, 4, level & 0xF);
    set_bits(qh, 2 * part, 2, level >> 4);
  }
  const int q = (get_bits(ql, lshift, 4) | (get_bits(qh, 2 * part, 2) << 4)) - 32;
  return d * sc * q;
}

constexpr FitRound kFitRound{0, &fit, &round};

void dequantize_row(const uint8_t* in, int64_t n, float* out) {
  for (int64_t i = 0; i < n / kSuper; ++i) {
    const auto b = load_block<BlockQ6_K>(in + i * sizeof(BlockQ6_K));
    const float d = h2f(b.d);
    float* y = out + i * kSuper;
    for (int half = 0; half < 2; ++half) {
      const uint8_t* ql = b.ql + 64 * half;
      const uint8_t* qh = b.qh + 32 * half;
      const int8_t* sc = b.scales + 8 * half;
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l] = d * sc[is] * q1;
        y[l + 32] = d * sc[is + 2] * q2;
        y[l + 64] = d * sc[is + 4] * q3;
        y[l + 96] = d * sc[is + 6] * q4;
      }
      y += 128;
    }
  }
}

}  // namespace

Format q6_k_format() {
  return block_format<BlockQ6_K, kSuper, quantize_row, dequantize_row>(
      "q6_k", 14, FormatKind::kKQuant, true, {0.023, 0.038, 0.05},
      "ggml Q6_K: 256-superblocks, 16x16 sub-blocks with int8 scales, 6-bit levels", &kFitRound);
}

}  // namespace lowbit::formats
