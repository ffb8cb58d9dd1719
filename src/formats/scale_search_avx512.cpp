// AVX-512 affine_scale_search on 16 groups at once, one group per lane: each lane runs the
// scalar search's exact sequence of float operations (sums in element order, mul and add
// kept apart, the same tie rules), so its results equal affine_scale_search bit for bit.
// Compiled with AVX-512 flags; scale_search.cpp calls it only when the CPU has AVX-512.
#include <immintrin.h>

#include <cstdint>

namespace lowbit::formats {

namespace {

// ggml's nearest_int on each lane: v + 1.5·2^23, mantissa bits minus 2^22 (valid for |v| <= 2^22).
inline __m512 nearest_int_ps(__m512 v) {
  const __m512i bits = _mm512_castps_si512(_mm512_add_ps(v, _mm512_set1_ps(12582912.f)));
  const __m512i i = _mm512_sub_epi32(_mm512_and_si512(bits, _mm512_set1_epi32(0x007fffff)), _mm512_set1_epi32(0x00400000));
  return _mm512_cvtepi32_ps(i);
}

}  // namespace

// lanes groups (<= 16) of n (<= 32) values, group g at x + g*n (weights likewise); outputs
// L + g*n, scale_out[g], min_out[g]. nullptr weights: x^2.
void affine_scale_search_x16(int lanes, int n, int nmax, const float* x, const float* weights, uint8_t* L,
                             float* scale_out, float* min_out, float rmin, float rdelta, int nstep, bool use_mad) {
  const __mmask16 valid = static_cast<__mmask16>((1u << lanes) - 1u);
  const __m512i index = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                           _mm512_set1_epi32(n));
  __m512 X[32], W[32], Lv[32], C[32];
  for (int i = 0; i < n; ++i) {
    X[i] = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), valid, index, x + i, 4);
    W[i] = weights ? _mm512_mask_i32gather_ps(_mm512_setzero_ps(), valid, index, weights + i, 4) : _mm512_mul_ps(X[i], X[i]);
  }
  __m512 min = X[0], max = X[0], sum_w = _mm512_setzero_ps(), sum_x = _mm512_setzero_ps();
  for (int i = 0; i < n; ++i) {
    min = _mm512_min_ps(X[i], min);  // std::min(min, x): x < min ? x : min
    max = _mm512_max_ps(X[i], max);  // std::max(max, x): x > max ? x : max
    sum_w = _mm512_add_ps(sum_w, W[i]);
    sum_x = _mm512_add_ps(sum_x, _mm512_mul_ps(W[i], X[i]));
  }
  const __m512 zero = _mm512_setzero_ps(), fnmax = _mm512_set1_ps(static_cast<float>(nmax));
  min = _mm512_mask_mov_ps(min, _mm512_cmp_ps_mask(min, zero, _CMP_GT_OQ), zero);
  // Lanes whose values are all equal keep levels 0, scale 0 and min_out = -min.
  const __mmask16 active = _mm512_cmp_ps_mask(max, min, _CMP_GT_OQ) & valid;
  auto error_of = [&](const __m512* levels, __m512 scale, __m512 offset) {
    __m512 err = zero;
    for (int i = 0; i < n; ++i) {
      __m512 diff = _mm512_sub_ps(_mm512_add_ps(_mm512_mul_ps(scale, levels[i]), offset), X[i]);
      diff = use_mad ? _mm512_abs_ps(diff) : _mm512_mul_ps(diff, diff);
      err = _mm512_add_ps(err, _mm512_mul_ps(W[i], diff));
    }
    return err;
  };
  __m512 iscale = _mm512_div_ps(fnmax, _mm512_sub_ps(max, min));
  __m512 scale = _mm512_div_ps(_mm512_set1_ps(1.0f), iscale);
  for (int i = 0; i < n; ++i) {
    const __m512 l = nearest_int_ps(_mm512_mul_ps(iscale, _mm512_sub_ps(X[i], min)));
    Lv[i] = _mm512_min_ps(_mm512_max_ps(l, zero), fnmax);  // clamp to [0, nmax] (integers: exact)
  }
  __m512 best = error_of(Lv, scale, min);
  for (int step = 0; step <= nstep; ++step) {
    const float numerator = rmin + rdelta * static_cast<float>(step) + static_cast<float>(nmax);
    iscale = _mm512_div_ps(_mm512_set1_ps(numerator), _mm512_sub_ps(max, min));  // min moves with the best fit
    __m512 sum_l = zero, sum_l2 = zero, sum_xl = zero;
    for (int i = 0; i < n; ++i) {
      const __m512 v = _mm512_mul_ps(iscale, _mm512_sub_ps(X[i], min));
      // v > 0 ? nearest_int(std::min(v, nmax)) : 0, with std::min(v, nmax) = nmax < v ? nmax : v
      const __m512 capped = _mm512_mask_mov_ps(v, _mm512_cmp_ps_mask(fnmax, v, _CMP_LT_OQ), fnmax);
      const __m512 l = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, zero, _CMP_GT_OQ), nearest_int_ps(capped));
      C[i] = l;
      const __m512 wl = _mm512_mul_ps(W[i], l);
      sum_l = _mm512_add_ps(sum_l, wl);
      sum_l2 = _mm512_add_ps(sum_l2, _mm512_mul_ps(wl, l));
      sum_xl = _mm512_add_ps(sum_xl, _mm512_mul_ps(wl, X[i]));
    }
    const __m512 det = _mm512_sub_ps(_mm512_mul_ps(sum_w, sum_l2), _mm512_mul_ps(sum_l, sum_l));
    const __mmask16 fit = _mm512_cmp_ps_mask(det, zero, _CMP_GT_OQ) & active;
    if (fit == 0) continue;
    __m512 this_scale = _mm512_div_ps(_mm512_sub_ps(_mm512_mul_ps(sum_w, sum_xl), _mm512_mul_ps(sum_x, sum_l)), det);
    __m512 this_min = _mm512_div_ps(_mm512_sub_ps(_mm512_mul_ps(sum_l2, sum_x), _mm512_mul_ps(sum_l, sum_xl)), det);
    const __mmask16 positive = _mm512_cmp_ps_mask(this_min, zero, _CMP_GT_OQ);
    this_min = _mm512_mask_mov_ps(this_min, positive, zero);
    this_scale = _mm512_mask_div_ps(this_scale, positive, sum_xl, sum_l2);
    const __m512 err = error_of(C, this_scale, this_min);
    const __mmask16 better = _mm512_cmp_ps_mask(err, best, _CMP_LT_OQ) & fit;
    if (better == 0) continue;
    for (int i = 0; i < n; ++i) Lv[i] = _mm512_mask_mov_ps(Lv[i], better, C[i]);
    best = _mm512_mask_mov_ps(best, better, err);
    scale = _mm512_mask_mov_ps(scale, better, this_scale);
    min = _mm512_mask_mov_ps(min, better, this_min);
  }
  alignas(64) float scales[16], mins[16], levels[32][16];
  _mm512_store_ps(scales, _mm512_maskz_mov_ps(active, scale));
  _mm512_store_ps(mins, min);
  for (int i = 0; i < n; ++i) _mm512_store_ps(levels[i], _mm512_maskz_mov_ps(active, Lv[i]));
  for (int g = 0; g < lanes; ++g) {
    scale_out[g] = scales[g];
    min_out[g] = -mins[g];
    for (int i = 0; i < n; ++i) L[g * n + i] = static_cast<uint8_t>(levels[i][g]);
  }
}


// symmetric_scale_search (kSquare fallback, no chosen_iscale) on lanes <= 16 groups of n <= 32.
void symmetric_scale_search_x16(int lanes, int n, int nmax, const float* x, const float* weights, int8_t* L,
                                float* scale_out) {
  const __mmask16 valid = static_cast<__mmask16>((1u << lanes) - 1u);
  const __m512i index = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                           _mm512_set1_epi32(n));
  const __m512 zero = _mm512_setzero_ps();
  __m512 X[32], W[32], Lv[32], C[32];
  __m512 amax = zero, max = zero;
  for (int i = 0; i < n; ++i) {
    X[i] = _mm512_mask_i32gather_ps(zero, valid, index, x + i, 4);
    W[i] = weights ? _mm512_mask_i32gather_ps(zero, valid, index, weights + i, 4) : _mm512_mul_ps(X[i], X[i]);
    const __m512 ax = _mm512_abs_ps(X[i]);
    const __mmask16 larger = _mm512_cmp_ps_mask(ax, amax, _CMP_GT_OQ);  // first of the largest
    amax = _mm512_mask_mov_ps(amax, larger, ax);
    max = _mm512_mask_mov_ps(max, larger, X[i]);
  }
  const __mmask16 active = _mm512_cmp_ps_mask(amax, _mm512_set1_ps(1e-15f), _CMP_GE_OQ) & valid;  // kGroupMaxEps
  const __m512 lo = _mm512_set1_ps(static_cast<float>(-nmax)), hi = _mm512_set1_ps(static_cast<float>(nmax - 1));
  // Levels of inverse scale iscale into out, and their least-squares sums.
  auto fit = [&](__m512 iscale, __m512* out, __m512* sumlx, __m512* suml2) {
    *sumlx = *suml2 = zero;
    for (int i = 0; i < n; ++i) {
      const __m512 l = _mm512_min_ps(_mm512_max_ps(nearest_int_ps(_mm512_mul_ps(iscale, X[i])), lo), hi);
      out[i] = l;
      *sumlx = _mm512_add_ps(*sumlx, _mm512_mul_ps(_mm512_mul_ps(W[i], X[i]), l));
      *suml2 = _mm512_add_ps(*suml2, _mm512_mul_ps(_mm512_mul_ps(W[i], l), l));
    }
  };
  __m512 sumlx, suml2;
  fit(_mm512_div_ps(lo, max), Lv, &sumlx, &suml2);
  __m512 scale = _mm512_maskz_div_ps(_mm512_cmp_ps_mask(suml2, zero, _CMP_NEQ_UQ), sumlx, suml2);
  __m512 best = _mm512_mul_ps(scale, sumlx);
  for (int step = -9; step <= 9; ++step) {
    if (step == 0) continue;
    const float numerator = -(static_cast<float>(nmax) + 0.1f * static_cast<float>(step));
    fit(_mm512_div_ps(_mm512_set1_ps(numerator), max), C, &sumlx, &suml2);
    const __mmask16 better = _mm512_cmp_ps_mask(suml2, zero, _CMP_GT_OQ) &
                             _mm512_cmp_ps_mask(_mm512_mul_ps(sumlx, sumlx), _mm512_mul_ps(best, suml2), _CMP_GT_OQ) & active;
    if (better == 0) continue;
    for (int i = 0; i < n; ++i) Lv[i] = _mm512_mask_mov_ps(Lv[i], better, C[i]);
    scale = _mm512_mask_div_ps(scale, better, sumlx, suml2);
    best = _mm512_mask_mov_ps(best, better, _mm512_mul_ps(scale, sumlx));
  }
  alignas(64) float scales[16], levels[32][16];
  _mm512_store_ps(scales, _mm512_maskz_mov_ps(active, scale));
  for (int i = 0; i < n; ++i) _mm512_store_ps(levels[i], _mm512_maskz_mov_ps(active, _mm512_add_ps(Lv[i], _mm512_set1_ps(static_cast<float>(nmax)))));
  for (int g = 0; g < lanes; ++g) {
    scale_out[g] = scales[g];
    for (int i = 0; i < n; ++i) L[g * n + i] = static_cast<int8_t>(levels[i][g]);
  }
}

}  // namespace lowbit::formats
