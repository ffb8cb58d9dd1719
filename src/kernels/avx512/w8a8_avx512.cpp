// The W8A8 tile with AVX-512 VNNI (IsaKernels::w8a8_tile): one weight panel (4 rows
// interleaved per 64 columns, one read stream) × 4 tokens, 16 int32 accumulators.
// vpdpbusd multiplies unsigned by signed bytes, so the activation codes are shifted to u8
// (x + 128, by flipping the sign bit, once per load for all 4 rows) and 128 · Σ w (stored
// in the panel) taken off each row's sums: the int32 sums are exactly the scalar ones, and
// the scales are applied in the same order, so the result is bit for bit the reference's.
#include <immintrin.h>

#include <cstring>

#include "kernels/kernel_impl.h"

namespace lowbit::kernels {
namespace {

// The sum of the 16 int32 lanes (exact in any order), in registers: GCC 12's
// _mm512_reduce_add_epi32 keeps its argument in memory, and with it the accumulators.
inline int32_t lane_sum(__m512i v) {
  const __m256i a = _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
  __m128i b = _mm_add_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1));
  b = _mm_add_epi32(b, _mm_shuffle_epi32(b, 0x4E));
  b = _mm_add_epi32(b, _mm_shuffle_epi32(b, 0xB1));
  return _mm_cvtsi128_si32(b);
}

// NT tokens at compile time and every loop unrolled, so the 4 × NT accumulators stay in
// registers.
template <int NT>
void tile(const uint8_t* xs, const uint8_t* panel, int nr, int64_t cols, float* y, int64_t ldy) {
  const int64_t stride = 4 + cols;
  const uint8_t* codes = panel + 32;
  __m512i acc[4][NT];
#pragma GCC unroll 4
  for (int r = 0; r < 4; ++r) {
#pragma GCC unroll 4
    for (int t = 0; t < NT; ++t) acc[r][t] = _mm512_setzero_si512();
  }
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  const __mmask64 tail = cols % 64 == 0 ? ~__mmask64{0} : (__mmask64{1} << (cols % 64)) - 1;
  for (int64_t i = 0; i < cols; i += 64, codes += 256) {
    const __mmask64 m = i + 64 <= cols ? ~__mmask64{0} : tail;  // x past the end: 0 (w is 0 there)
    __m512i w[4];
#pragma GCC unroll 4
    for (int r = 0; r < 4; ++r) w[r] = _mm512_loadu_si512(codes + 64 * r);
#pragma GCC unroll 4
    for (int t = 0; t < NT; ++t) {
      const __m512i xu = _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, xs + t * stride + 4 + i), flip);  // x + 128
#pragma GCC unroll 4
      for (int r = 0; r < 4; ++r) acc[r][t] = _mm512_dpbusd_epi32(acc[r][t], xu, w[r]);
    }
  }
  int32_t sums[4][NT];
#pragma GCC unroll 4
  for (int r = 0; r < 4; ++r) {
    int32_t wsum;
    std::memcpy(&wsum, panel + 16 + 4 * r, 4);
#pragma GCC unroll 4
    for (int t = 0; t < NT; ++t) sums[r][t] = lane_sum(acc[r][t]) - 128 * wsum;
  }
  for (int r = 0; r < nr; ++r) {
    float aw;
    std::memcpy(&aw, panel + 4 * r, 4);
    for (int t = 0; t < NT; ++t) {
      float ax;
      std::memcpy(&ax, xs + t * stride, 4);
      y[t * ldy + r] = static_cast<float>(sums[r][t]) * (ax / 127.0f) * (aw / 127.0f);
    }
  }
}

}  // namespace

void w8a8_tile_avx512(const uint8_t* xs, int nt, const uint8_t* panel, int nr, int64_t cols, float* y, int64_t ldy) {
  switch (nt) {
    case 1: return tile<1>(xs, panel, nr, cols, y, ldy);
    case 2: return tile<2>(xs, panel, nr, cols, y, ldy);
    case 3: return tile<3>(xs, panel, nr, cols, y, ldy);
    default: return tile<4>(xs, panel, nr, cols, y, ldy);
  }
}

}  // namespace lowbit::kernels
