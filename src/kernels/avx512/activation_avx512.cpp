// AVX-512 elementwise activations. exp is evaluated as 2^n · p(r): n = round(x log2 e),
// r = x - n ln 2 (ln 2 split in two so the reduction is exact to about 1e-10), and p a
// minimax polynomial of e^r on |r| <= ln2/2 with a relative error of about one float ulp
// (the test holds swiglu to 1e-6 of std::exp's). Inputs are clamped to [-87.3, 88.7],
// where e^x is a normal float.
#include <immintrin.h>

#include <cstdint>

#include "kernels/kernel_impl.h"

namespace lowbit::kernels {
namespace {

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
    const __mmask16 m = n - i >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << (n - i)) - 1u);
    const __m512 g = _mm512_maskz_loadu_ps(m, gate + i), u = _mm512_maskz_loadu_ps(m, up + i);
    const __m512 e = exp_ps(_mm512_sub_ps(_mm512_setzero_ps(), g));
    _mm512_mask_storeu_ps(gate + i, m, _mm512_mul_ps(_mm512_div_ps(g, _mm512_add_ps(_mm512_set1_ps(1.0f), e)), u));
  }
}

}  // namespace lowbit::kernels
