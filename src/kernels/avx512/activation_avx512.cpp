// AVX-512 elementwise activations. exp is evaluated as 2^n · p(r): n = round(x log2 e),
// r = x - n ln 2 (ln 2 split in two so the reduction is exact to about 1e-10), and p a
// minimax polynomial of e^r on |r| <= ln2/2 with a relative error of about one float ulp
// (the test holds swiglu to 1e-6 of std::exp's). Inputs are clamped to [-87.3, 88.7],
// where e^x is a normal float.
#include <immintrin.h>

#include <algorithm>
#include <climits>
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

namespace {

// Key and value rows are read once per KV head from DRAM (the weights' stream has evicted
// them): prefetched this many rows ahead.
constexpr int64_t kPrefetchRows = 32;

// The cache lines of n_rows rows of n floats at rows + r·stride (addresses past the cache's
// end are only prefetched, never read).
inline void prefetch_rows(const float* rows, int64_t stride, int64_t n_rows, int64_t n) {
  for (int64_t r = 0; r < n_rows; ++r) {
    for (int64_t i = 0; i < n; i += 16) _mm_prefetch(reinterpret_cast<const char*>(rows + r * stride + i), _MM_HINT_T0);
  }
}

// r[j] = Σ lanes of v[j], j < 16: pairs of rows summed within 128-bit lanes, then quads,
// then the four 128-bit lanes of each quad added across (45 instructions for 16 sums,
// where 16 _mm512_reduce_add_ps take about 130).
inline __m512 reduce16(const __m512* v) {
  __m512 w[8], x[4];
  for (int k = 0; k < 8; ++k) {  // per 128-bit lane: rows 2k, 2k+1 interleaved in pairs
    w[k] = _mm512_add_ps(_mm512_unpacklo_ps(v[2 * k], v[2 * k + 1]), _mm512_unpackhi_ps(v[2 * k], v[2 * k + 1]));
  }
  for (int k = 0; k < 4; ++k) {  // per 128-bit lane L: the lane-L partial sums of rows 4k..4k+3
    const __m512d a = _mm512_castps_pd(w[2 * k]), b = _mm512_castps_pd(w[2 * k + 1]);
    x[k] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(a, b)), _mm512_castpd_ps(_mm512_unpackhi_pd(a, b)));
  }
  // 128-bit lane j of the result: Σ over the four lanes of x[j].
  const __m512 u0 = _mm512_add_ps(_mm512_shuffle_f32x4(x[0], x[1], _MM_SHUFFLE(1, 0, 1, 0)), _mm512_shuffle_f32x4(x[0], x[1], _MM_SHUFFLE(3, 2, 3, 2)));
  const __m512 u1 = _mm512_add_ps(_mm512_shuffle_f32x4(x[2], x[3], _MM_SHUFFLE(1, 0, 1, 0)), _mm512_shuffle_f32x4(x[2], x[3], _MM_SHUFFLE(3, 2, 3, 2)));
  return _mm512_add_ps(_mm512_shuffle_f32x4(u0, u1, _MM_SHUFFLE(2, 0, 2, 0)), _mm512_shuffle_f32x4(u0, u1, _MM_SHUFFLE(3, 1, 3, 1)));
}

// out: (16) = x · rows 0..15, one accumulator per row.
inline void dot16(const float* x, const float* rows, int64_t stride, int64_t n, float* out) {
  __m512 acc[16];
  for (auto& a : acc) a = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i);
    const __m512 xv = _mm512_maskz_loadu_ps(m, x + i);
    for (int k = 0; k < 16; ++k) acc[k] = _mm512_fmadd_ps(xv, _mm512_maskz_loadu_ps(m, rows + k * stride + i), acc[k]);
  }
  _mm512_storeu_ps(out, reduce16(acc));
}

// out: (NQ, n) at out + q·os = Σ_r w[q·ws + r] · row r, for 64 columns from i0: every row
// is loaded once for the NQ queries.
template <int NQ>
void weighted_sum64(const float* w, int64_t ws, const float* rows, int64_t stride, int64_t n_rows, int64_t n, int64_t i0,
                    float* out, int64_t os) {
  __mmask16 m[4];
  __m512 acc[NQ][4];
  for (int k = 0; k < 4; ++k) {
    m[k] = i0 + 16 * k < n ? tail_mask(n - i0 - 16 * k) : static_cast<__mmask16>(0);
    for (int q = 0; q < NQ; ++q) acc[q][k] = _mm512_setzero_ps();
  }
  for (int64_t r = 0; r < n_rows; ++r) {
    const float* row = rows + r * stride + i0;
    prefetch_rows(row + kPrefetchRows * stride, stride, 1, std::min<int64_t>(64, n - i0));
    __m512 rv[4];
    for (int k = 0; k < 4; ++k) rv[k] = _mm512_maskz_loadu_ps(m[k], row + 16 * k);
    for (int q = 0; q < NQ; ++q) {
      const __m512 wr = _mm512_set1_ps(w[q * ws + r]);
      for (int k = 0; k < 4; ++k) acc[q][k] = _mm512_fmadd_ps(wr, rv[k], acc[q][k]);
    }
  }
  for (int q = 0; q < NQ; ++q) {
    for (int k = 0; k < 4; ++k) _mm512_mask_storeu_ps(out + q * os + i0 + 16 * k, m[k], acc[q][k]);
  }
}

}  // namespace

// 16 rows at a time per query (the rows stay in L1 across the queries), summed by reduce16;
// the last n_rows % 16 rows one by one.
void dot_rows_avx512(const float* x, int64_t xs, int nq, const float* rows, int64_t stride, int64_t n_rows, int64_t n,
                     float* out, int64_t os) {
  int64_t r = 0;
  for (; r + 16 <= n_rows; r += 16) {
    prefetch_rows(rows + (r + kPrefetchRows) * stride, stride, 16, n);
    for (int q = 0; q < nq; ++q) dot16(x + q * xs, rows + r * stride, stride, n, out + q * os + r);
  }
  for (; r < n_rows; ++r) {
    for (int q = 0; q < nq; ++q) {
      __m512 acc = _mm512_setzero_ps();
      for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = tail_mask(n - i);
        acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, x + q * xs + i), _mm512_maskz_loadu_ps(m, rows + r * stride + i), acc);
      }
      out[q * os + r] = _mm512_reduce_add_ps(acc);
    }
  }
}

// Up to 4 queries and 64 output columns at a time, held in registers while every row is
// added in.
void weighted_sum_avx512(const float* w, int64_t ws, int nq, const float* rows, int64_t stride, int64_t n_rows, int64_t n,
                         float* out, int64_t os) {
  for (int q0 = 0; q0 < nq; q0 += 4) {
    const float* wq = w + q0 * ws;
    float* oq = out + q0 * os;
    for (int64_t i0 = 0; i0 < n; i0 += 64) {
      switch (std::min(4, nq - q0)) {
        case 1: weighted_sum64<1>(wq, ws, rows, stride, n_rows, n, i0, oq, os); break;
        case 2: weighted_sum64<2>(wq, ws, rows, stride, n_rows, n, i0, oq, os); break;
        case 3: weighted_sum64<3>(wq, ws, rows, stride, n_rows, n, i0, oq, os); break;
        default: weighted_sum64<4>(wq, ws, rows, stride, n_rows, n, i0, oq, os); break;
      }
    }
  }
}

// RoPE, 16 floats a step. Halves: a and b are 16 consecutive elements of each half, with 16
// cos/sin. Adjacent pairs: 8 pairs a step; each pair's cos and sin duplicated into both of
// its lanes, sin negated in the even lanes, and the pair swapped by an in-lane permute:
// x c2 + swap(x) s2 = (a c - b s, b c + a s). Products are rounded before the add, as in
// rope_ref, so the two agree bit for bit.
void rope_avx512(float* x, int64_t n_heads, int64_t head_dim, bool adjacent_pairs, const float* cos, const float* sin) {
  const int64_t half = head_dim / 2;
  if (!adjacent_pairs) {
    for (int64_t i = 0; i < half; i += 16) {
      const __mmask16 m = tail_mask(half - i);
      const __m512 c = _mm512_maskz_loadu_ps(m, cos + i), s = _mm512_maskz_loadu_ps(m, sin + i);
      for (int64_t h = 0; h < n_heads; ++h) {
        float* a = x + h * head_dim + i;
        float* b = a + half;
        const __m512 x0 = _mm512_maskz_loadu_ps(m, a), x1 = _mm512_maskz_loadu_ps(m, b);
        _mm512_mask_storeu_ps(a, m, _mm512_sub_ps(_mm512_mul_ps(x0, c), _mm512_mul_ps(x1, s)));
        _mm512_mask_storeu_ps(b, m, _mm512_add_ps(_mm512_mul_ps(x0, s), _mm512_mul_ps(x1, c)));
      }
    }
    return;
  }
  const __m512i dup = _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
  const __m512 even_negative = _mm512_castsi512_ps(_mm512_set_epi32(0, INT32_MIN, 0, INT32_MIN, 0, INT32_MIN, 0, INT32_MIN, 0,
                                                                     INT32_MIN, 0, INT32_MIN, 0, INT32_MIN, 0, INT32_MIN));
  for (int64_t i = 0; i < half; i += 8) {  // pairs i..i+7 = elements 2i..2i+15
    const int64_t left = std::min<int64_t>(8, half - i);
    const __mmask16 m8 = static_cast<__mmask16>((1u << left) - 1u), m16 = tail_mask(2 * left);
    const __m512 c2 = _mm512_permutexvar_ps(dup, _mm512_maskz_loadu_ps(m8, cos + i));
    const __m512 s2 = _mm512_xor_ps(_mm512_permutexvar_ps(dup, _mm512_maskz_loadu_ps(m8, sin + i)), even_negative);
    for (int64_t h = 0; h < n_heads; ++h) {
      float* p = x + h * head_dim + 2 * i;
      const __m512 v = _mm512_maskz_loadu_ps(m16, p);
      const __m512 swapped = _mm512_permute_ps(v, _MM_SHUFFLE(2, 3, 0, 1));
      _mm512_mask_storeu_ps(p, m16, _mm512_add_ps(_mm512_mul_ps(v, c2), _mm512_mul_ps(swapped, s2)));
    }
  }
}

}  // namespace lowbit::kernels
