// AVX-512 VNNI building blocks shared by the avx512 kernel files: one 64-element chunk of
// unsigned weight codes with its per-lane scales, accumulated against nt Q8 activation rows.
// Only included by files compiled with the AVX-512 flags.
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "formats/iq4_search.h"
#include "kernels/kernel_impl.h"
#include "lowbit/kernels.h"

namespace lowbit::kernels::avx512 {

// Lane k of a 16-lane vector covers codes 4k..4k+3, i.e. sub-block k/4 of the chunk.
inline __m512 expand_sub4(__m128 four) {
  const __m512i idx = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
  return _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(four));
}
// Lanes 0-7 get two[0], lanes 8-15 get two[1] (two 32-element blocks per chunk).
inline __m512 expand_sub2(__m128 two) {
  const __m512i idx = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
  return _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(two));
}

// The iq4 grid as unsigned codes (grid + 128) in every 128-bit lane, for VPSHUFB.
inline __m512i iq4_lut() {
  alignas(16) uint8_t lut[16];
  for (int i = 0; i < 16; ++i) lut[i] = static_cast<uint8_t>(formats::kIq4Grid[i] + 128);
  return _mm512_broadcast_i32x4(_mm_load_si128(reinterpret_cast<const __m128i*>(lut)));
}

// Per activation row: s the scaled products (per lane), b4 the offsets, accumulated a chunk
// (4 sub-blocks) at a time. finish() multiplies the offset sums by bias_scale, so kernels
// whose offset is a fixed multiple of the scale (q4_0: b = -8 d) accumulate d and scale
// once per row.
template <int NT>
struct Acc {
  __m512 s[NT], s2[NT];  // two chains: a chunk's FMA need not wait for the previous one
  __m128 b4[NT];
  float bias_scale = 1.0f;
  Acc() {
    for (int n = 0; n < NT; ++n) {
      s[n] = s2[n] = _mm512_setzero_ps();
      b4[n] = _mm_setzero_ps();
    }
  }
  void finish(float* y) const {
    for (int n = 0; n < NT; ++n) {
      const __m128 b2 = _mm_add_ps(b4[n], _mm_movehl_ps(b4[n], b4[n]));
      const __m128 b1 = _mm_add_ss(b2, _mm_shuffle_ps(b2, b2, 1));
      y[n] = _mm512_reduce_add_ps(_mm512_add_ps(s[n], s2[n])) + bias_scale * _mm_cvtss_f32(b1);
    }
  }
};

// Chunk c (elements 64c..64c+63): u the codes, a_lane each lane's weight scale.
// acc.s += (Σ_lane u q) a d; even chunks on one chain, odd chunks on the other.
template <int NT>
inline void accumulate_codes(Acc<NT>& acc, __m512i u, __m512 a_lane, const Q8RowView* xs, int64_t c) {
  __m512* chain = (c & 1) ? acc.s2 : acc.s;
  for (int n = 0; n < NT; ++n) {
    const __m512i q = _mm512_loadu_si512(xs[n].q + 64 * c);
    const __m512i isum = _mm512_dpbusd_epi32(_mm512_setzero_si512(), u, q);
    const __m512 scale = _mm512_mul_ps(a_lane, _mm512_loadu_ps(xs[n].d_lane + 16 * c));
    chain[n] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), scale, chain[n]);
  }
}

// The offsets of chunk c's four sub-blocks: acc.b4 += b4 * sum.
template <int NT>
inline void accumulate_offsets4(Acc<NT>& acc, __m128 b4, const Q8RowView* xs, int64_t c) {
  for (int n = 0; n < NT; ++n) acc.b4[n] = _mm_fmadd_ps(b4, _mm_loadu_ps(xs[n].sum + 4 * c), acc.b4[n]);
}

// Both at once, for the generic dot.
template <int NT>
inline void accumulate(Acc<NT>& acc, __m512i u, __m512 a_lane, __m128 b4, const Q8RowView* xs, int64_t c) {
  accumulate_codes(acc, u, a_lane, xs, c);
  accumulate_offsets4(acc, b4, xs, c);
}

// Runs body(acc) with an Acc<NT> for NT = nt (1..4), then writes y.
template <typename Body>
inline void for_nt(int nt, float* y, Body&& body) {
  with_nt(nt, [&](auto n) {
    Acc<decltype(n)::value> acc;
    body(acc);
    acc.finish(y);
  });
}

}  // namespace lowbit::kernels::avx512
