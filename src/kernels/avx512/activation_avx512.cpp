// AVX-512 elementwise activations. exp is evaluated as 2^n · p(r): n = round(x log2 e),
// r = x - n ln 2 (ln 2 split in two so the reduction is exact to about 1e-10), and p a
// minimax polynomial of e^r on |r| <= ln2/2 with a relative error of about one float ulp
// (the test holds swiglu to 1e-6 of std::exp's). Inputs are clamped to [-87.3, 88.7],
// where e^x is a normal float.
#include <immintrin.h>

#include <cmath>
#include <cstdint>

#include "kernels/kernel_impl.h"

namespace lowbit::kernels {
namespace {

// The lanes of a 16-float step that lie within the `left` elements still to go.
inline __mmask16 tail_mask(int64_t left) {
  return left >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << left) - 1u);
}

inline __m512 exp_ps(__m512 x) {
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.3f)), _mm512_set1_ps(88.7f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504f)), _MM_FROUND_TO_NEAREST_INT);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145752f), x);  // ln 2's high part (exact in n·hi)
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.42860677e-6f), r);        // ln 2 - high part
  // e^r = 1 + r + r^2 P(r), P the minimax fit of (e^r - 1 - r) / r^2 on [-ln2/2, ln2/2]
  // (Cephes' expf coefficients).
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_scalef_ps(p, n);
}

}  // namespace

// gate: (n) <- gate / (1 + exp(-gate)) * up: (n); the tail through a mask.
void swiglu_avx512(float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i);
    const __m512 g = _mm512_maskz_loadu_ps(m, gate + i), u = _mm512_maskz_loadu_ps(m, up + i);
    const __m512 e = exp_ps(_mm512_sub_ps(_mm512_setzero_ps(), g));
    _mm512_mask_storeu_ps(gate + i, m, _mm512_mul_ps(_mm512_div_ps(g, _mm512_add_ps(_mm512_set1_ps(1.0f), e)), u));
  }
}

// x: (n) <- exp(x - max) / Σ: the max and the sum in 16 lanes, then reduced.
void softmax_avx512(float* x, int64_t n) {
  auto mask = [n](int64_t i) { return tail_mask(n - i); };
  __m512 vmax = _mm512_set1_ps(-INFINITY);
  for (int64_t i = 0; i < n; i += 16) vmax = _mm512_mask_max_ps(vmax, mask(i), vmax, _mm512_maskz_loadu_ps(mask(i), x + i));
  const __m512 max = _mm512_set1_ps(_mm512_reduce_max_ps(vmax));
  __m512 vsum = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) {
    const __m512 e = exp_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(mask(i), x + i), max));
    _mm512_mask_storeu_ps(x + i, mask(i), e);
    vsum = _mm512_mask_add_ps(vsum, mask(i), vsum, e);
  }
  const __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(vsum));
  for (int64_t i = 0; i < n; i += 16) _mm512_mask_storeu_ps(x + i, mask(i), _mm512_mul_ps(_mm512_maskz_loadu_ps(mask(i), x + i), inv));
}

// Four rows at a time, one accumulator each, 16 columns a step.
void dot_rows_avx512(const float* x, const float* rows, int64_t stride, int64_t n_rows, int64_t n, float* out) {
  int64_t r = 0;
  for (; r + 4 <= n_rows; r += 4) {
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    for (int64_t i = 0; i < n; i += 16) {
      const __mmask16 m = tail_mask(n - i);
      const __m512 xv = _mm512_maskz_loadu_ps(m, x + i);
      for (int k = 0; k < 4; ++k) acc[k] = _mm512_fmadd_ps(xv, _mm512_maskz_loadu_ps(m, rows + (r + k) * stride + i), acc[k]);
    }
    for (int k = 0; k < 4; ++k) out[r + k] = _mm512_reduce_add_ps(acc[k]);
  }
  for (; r < n_rows; ++r) {
    __m512 acc = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 16) {
      const __mmask16 m = tail_mask(n - i);
      acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, rows + r * stride + i), acc);
    }
    out[r] = _mm512_reduce_add_ps(acc);
  }
}

// 64 output columns at a time held in registers while every row is added in.
void weighted_sum_avx512(const float* w, const float* rows, int64_t stride, int64_t n_rows, int64_t n, float* out) {
  for (int64_t i0 = 0; i0 < n; i0 += 64) {
    __mmask16 m[4];
    __m512 acc[4];
    for (int k = 0; k < 4; ++k) {
      m[k] = i0 + 16 * k < n ? tail_mask(n - i0 - 16 * k) : static_cast<__mmask16>(0);
      acc[k] = _mm512_setzero_ps();
    }
    for (int64_t r = 0; r < n_rows; ++r) {
      const __m512 wr = _mm512_set1_ps(w[r]);
      const float* row = rows + r * stride + i0;
      for (int k = 0; k < 4; ++k) acc[k] = _mm512_fmadd_ps(wr, _mm512_maskz_loadu_ps(m[k], row + 16 * k), acc[k]);
    }
    for (int k = 0; k < 4; ++k) _mm512_mask_storeu_ps(out + i0 + 16 * k, m[k], acc[k]);
  }
}

}  // namespace lowbit::kernels
