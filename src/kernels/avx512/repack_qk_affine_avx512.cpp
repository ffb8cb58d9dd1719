// q4_k and q5_k repacked for AVX-512 VNNI: 16 rows per group, per super-block of 256 columns
//   32 + 32 bytes: the 16 rows' fp16 d and dmin;
//   128 + 128 bytes: the 6-bit sub-scales and sub-mins unpacked to bytes, [sub-block][row];
//   2048 bytes: per 64-column chunk c, eight vectors V_j, lane r = qs[32c+4j..32c+4j+3] of
//               row r (low nibbles: sub-block 2c, high nibbles: sub-block 2c+1);
//   q5_k only, 512 bytes: eight vectors H_j, lane r = qh[4j..4j+3] of row r (the fifth bits
//               of every chunk: bit 2c for sub-block 2c, bit 2c+1 for sub-block 2c+1).
// Sub-scales are unpacked once here (4.625 instead of 4.5 bits per weight) so the kernel
// turns 16 rows' scales into floats with three instructions. See repack_nibble32_avx512.cpp.
#include <immintrin.h>

#include <cstddef>
#include <cstring>

#include "formats/blocks.h"
#include "formats/kquant_scales.h"
#include "kernels/avx512/repack_common.h"
#include "kernels/kernel_impl.h"

namespace lowbit::kernels {
namespace {

using namespace avx512;
using namespace lowbit::formats;

// Packed bytes per super-block of a group; the q5_k fifth-bit plane follows q4_k's layout.
template <bool Q5>
constexpr int64_t kPacked = 64 + 256 + 2048 + (Q5 ? 512 : 0);

template <bool Q5, typename Block>
void repack(const uint8_t* data, int64_t rows, int64_t cols, uint8_t* out) {
  repack_rows<256, sizeof(Block), kPacked<Q5>>(data, rows, cols, out, 0, [](uint8_t* dst, const uint8_t* blk, int r) {
    std::memcpy(dst + 2 * r, blk + offsetof(Block, d), 2);
    std::memcpy(dst + 32 + 2 * r, blk + offsetof(Block, dmin), 2);
    for (int s = 0; s < 8; ++s) {
      uint8_t sc, m;
      unpack_scale_min_k4(blk + offsetof(Block, scales), s, &sc, &m);
      dst[64 + 16 * s + r] = sc;
      dst[64 + 128 + 16 * s + r] = m;
    }
    for (int c = 0; c < 4; ++c) {
      for (int j = 0; j < 8; ++j) std::memcpy(dst + 320 + 512 * c + 64 * j + 4 * r, blk + offsetof(Block, qs) + 32 * c + 4 * j, 4);
    }
    if constexpr (Q5) {
      for (int j = 0; j < 8; ++j) std::memcpy(dst + 2368 + 64 * j + 4 * r, blk + offsetof(BlockQ5_K, qh) + 4 * j, 4);
    }
  });
}

// Chunk C's fifth bits ORed into the codes of half q (lo: sub-block 2C, hi: 2C+1).
template <int C>
inline void add_fifth_bits(const uint8_t* hplane, int q, __m512i* lo, __m512i* hi) {
  for (int j = 0; j < 4; ++j) {
    const __m512i h = _mm512_loadu_si512(hplane + 64 * (4 * q + j));
    lo[j] = _mm512_or_si512(lo[j], move_bit<2 * C, 4>(h));
    hi[j] = _mm512_or_si512(hi[j], move_bit<2 * C + 1, 4>(h));
  }
}

// 16 unsigned bytes → 16 floats.
inline __m512 bytes_to_floats(const uint8_t* p) {
  return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
}

template <bool Q5, int NT>
void dot_group(const uint8_t* packed, int64_t group, int64_t cols, const Q8RowView* xs, float* y) {
  constexpr int64_t kBytes = kPacked<Q5>;
  const int64_t ns = cols / 256;
  const uint8_t* p = packed + group * ns * kBytes;
  const __m512i mask = _mm512_set1_epi8(0x0F);
  __m512 acc[NT], bias[NT];
  for (int n = 0; n < NT; ++n) acc[n] = bias[n] = _mm512_setzero_ps();
  for (int64_t i = 0; i < ns; ++i, p += kBytes) {
    const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    const __m512 dmin = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32)));
    const __m512 d_16 = _mm512_mul_ps(d, _mm512_set1_ps(1.0f / 16));
    for (int c = 0; c < 4; ++c) {
      const uint8_t* v = p + 320 + 512 * c;
      prefetch_ahead<512>(v);
      if (Q5 && c == 0) prefetch_ahead<512>(p + 2368);
      const __m512 a_lo = _mm512_mul_ps(d, bytes_to_floats(p + 64 + 16 * (2 * c)));
      // q4_k reads its high nibbles in place (codes times 16; see below), so their scale is
      // divided by 16 (exact).
      const __m512 a_hi = _mm512_mul_ps(Q5 ? d : d_16, bytes_to_floats(p + 64 + 16 * (2 * c + 1)));
      const __m512 m_lo = _mm512_mul_ps(dmin, bytes_to_floats(p + 192 + 16 * (2 * c)));
      const __m512 m_hi = _mm512_mul_ps(dmin, bytes_to_floats(p + 192 + 16 * (2 * c + 1)));
      const int64_t s0 = 16 * i + 4 * c;  // the chunk's first activation sub-block
      // Sub-blocks 2c (low nibbles) and 2c+1 (high nibbles) are two activation sub-blocks
      // each: half q covers V_4q..V_4q+3, i.e. activation sub-blocks s0+q and s0+2+q.
      for (int q = 0; q < 2; ++q) {
        __m512i lo[4], hi[4];
        for (int j = 0; j < 4; ++j) {
          const __m512i w = _mm512_loadu_si512(v + 64 * (4 * q + j));
          lo[j] = _mm512_and_si512(w, mask);
          // q4_k: the high nibbles as they lie (16 q, at most 240: the products' sums stay
          // far inside int32), one shift fewer per vector; q5_k needs them low to OR bit 4.
          hi[j] = Q5 ? _mm512_and_si512(_mm512_srli_epi16(w, 4), mask) : _mm512_andnot_si512(mask, w);
        }
        if constexpr (Q5) {
          switch (c) {
            case 0: add_fifth_bits<0>(p + 2368, q, lo, hi); break;
            case 1: add_fifth_bits<1>(p + 2368, q, lo, hi); break;
            case 2: add_fifth_bits<2>(p + 2368, q, lo, hi); break;
            default: add_fifth_bits<3>(p + 2368, q, lo, hi); break;
          }
        }
        for (int n = 0; n < NT; ++n) {
          const Group4* g = reinterpret_cast<const Group4*>(xs[n].q + 256 * i + 64 * c);
          __m512i slo = _mm512_setzero_si512(), shi = _mm512_setzero_si512();
          for (int j = 0; j < 4; ++j) {
            slo = _mm512_dpbusd_epi32(slo, lo[j], _mm512_set1_epi32(g[4 * q + j]));
            shi = _mm512_dpbusd_epi32(shi, hi[j], _mm512_set1_epi32(g[8 + 4 * q + j]));
          }
          const float* dl = xs[n].d_lane + 4 * s0;
          acc[n] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(slo), _mm512_mul_ps(a_lo, _mm512_set1_ps(dl[4 * q])), acc[n]);
          acc[n] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(shi), _mm512_mul_ps(a_hi, _mm512_set1_ps(dl[8 + 4 * q])), acc[n]);
        }
      }
      for (int n = 0; n < NT; ++n) {
        const float* sm = xs[n].sum + s0;
        bias[n] = _mm512_fmadd_ps(m_lo, _mm512_set1_ps(sm[0] + sm[1]), bias[n]);
        bias[n] = _mm512_fmadd_ps(m_hi, _mm512_set1_ps(sm[2] + sm[3]), bias[n]);
      }
    }
  }
  for (int n = 0; n < NT; ++n) _mm512_storeu_ps(y + 16 * n, _mm512_sub_ps(acc[n], bias[n]));  // value = d sc q - dmin m
}

template <bool Q5>
void dot(const uint8_t* packed, int64_t group, int64_t cols, const Q8RowView* xs, int nt, float* y) {
  with_nt(nt, [&](auto n) { dot_group<Q5, decltype(n)::value>(packed, group, cols, xs, y); });
}

}  // namespace

extern const RepackKernels kRepackQ4_K{"q4_k", &packed_bytes<256, kPacked<false>>, &repack<false, BlockQ4_K>, &dot<false>};
extern const RepackKernels kRepackQ5_K{"q5_k", &packed_bytes<256, kPacked<true>>, &repack<true, BlockQ5_K>, &dot<true>};

}  // namespace lowbit::kernels
