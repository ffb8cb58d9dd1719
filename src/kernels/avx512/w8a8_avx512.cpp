// The W8A8 tile with AVX-512 VNNI (IsaKernels::w8a8_tile): 4 weight rows × 4 tokens, 16
// int32 accumulators. vpdpbusd multiplies unsigned by signed bytes, so the activation codes
// are shifted to u8 (x + 128, by flipping the sign bit, once per load for all 4 rows) and
// 128 · Σ w taken off each row's sums again (Σ w by one more vpdpbusd with ones per row):
// the int32 sums are exactly the scalar ones, and the scales are applied in the same order,
// so the result is bit for bit the reference's.
#include <immintrin.h>

#include <cstring>

#include "kernels/kernel_impl.h"

namespace lowbit::kernels {

void w8a8_tile_avx512(const uint8_t* xs, int nt, const uint8_t* ws, int nr, int64_t cols, float* y, int64_t ldy) {
  const int64_t stride = 4 + cols;
  __m512i acc[4][4], wsum[4];
  for (int r = 0; r < 4; ++r) {
    wsum[r] = _mm512_setzero_si512();
    for (int t = 0; t < 4; ++t) acc[r][t] = _mm512_setzero_si512();
  }
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80)), ones = _mm512_set1_epi8(1);
  for (int64_t i = 0; i < cols; i += 64) {
    const __mmask64 m = cols - i >= 64 ? ~__mmask64{0} : (__mmask64{1} << (cols - i)) - 1;
    __m512i w[4];
    for (int r = 0; r < 4; ++r) {
      w[r] = r < nr ? _mm512_maskz_loadu_epi8(m, ws + r * stride + 4 + i) : _mm512_setzero_si512();  // tail: 0
      wsum[r] = _mm512_dpbusd_epi32(wsum[r], ones, w[r]);
    }
    for (int t = 0; t < nt; ++t) {
      const __m512i xu = _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, xs + t * stride + 4 + i), flip);  // x + 128
      for (int r = 0; r < 4; ++r) acc[r][t] = _mm512_dpbusd_epi32(acc[r][t], xu, w[r]);
    }
  }
  for (int r = 0; r < nr; ++r) {
    float aw;
    std::memcpy(&aw, ws + r * stride, 4);
    const int32_t correction = 128 * _mm512_reduce_add_epi32(wsum[r]);
    for (int t = 0; t < nt; ++t) {
      float ax;
      std::memcpy(&ax, xs + t * stride, 4);
      const int32_t sum = _mm512_reduce_add_epi32(acc[r][t]) - correction;
      y[t * ldy + r] = static_cast<float>(sum) * (ax / 127.0f) * (aw / 127.0f);
    }
  }
}

}  // namespace lowbit::kernels
