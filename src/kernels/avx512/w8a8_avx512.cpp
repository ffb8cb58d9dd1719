// The W8A8 dot with AVX-512 VNNI (IsaKernels::w8a8_dot): vpdpbusd multiplies unsigned by
// signed bytes, so the weight codes are shifted to u8 (w + 128, by flipping the sign bit)
// and 128 · Σ x taken off again: the int32 sum is exactly the scalar one, and the scales
// are applied in the same order, so the result is bit for bit the reference's.
#include <immintrin.h>

#include <cstring>

#include "kernels/kernel_impl.h"

namespace lowbit::kernels {

void w8a8_dot_avx512(const uint8_t* xs, int nt, const uint8_t* w, int64_t cols, float* y) {
  const int8_t* wq = reinterpret_cast<const int8_t*>(w + 4);
  __m512i acc[4], xsum[4];
  for (int t = 0; t < 4; ++t) acc[t] = xsum[t] = _mm512_setzero_si512();
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80)), ones = _mm512_set1_epi8(1);
  for (int64_t i = 0; i < cols; i += 64) {
    const __mmask64 m = cols - i >= 64 ? ~__mmask64{0} : (__mmask64{1} << (cols - i)) - 1;
    const __m512i wu = _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, wq + i), flip);  // w + 128 (tail: 128 x 0)
    for (int t = 0; t < nt; ++t) {
      const __m512i x = _mm512_maskz_loadu_epi8(m, xs + t * (4 + cols) + 4 + i);
      acc[t] = _mm512_dpbusd_epi32(acc[t], wu, x);
      xsum[t] = _mm512_dpbusd_epi32(xsum[t], ones, x);
    }
  }
  float aw;
  std::memcpy(&aw, w, 4);
  for (int t = 0; t < nt; ++t) {
    float ax;
    std::memcpy(&ax, xs + t * (4 + cols), 4);
    const int32_t sum = _mm512_reduce_add_epi32(acc[t]) - 128 * _mm512_reduce_add_epi32(xsum[t]);
    y[t] = static_cast<float>(sum) * (ax / 127.0f) * (aw / 127.0f);
  }
}

}  // namespace lowbit::kernels
