// Shared plumbing of the AVX-512 repacked layouts (repack_*_avx512.cpp): the group size,
// the prefetch distance, the repacking loop over (group, block, row) and the packed size.
// Only included by files compiled with the AVX-512 flags.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "lowbit/kernels.h"

namespace lowbit::kernels::avx512 {

inline constexpr int64_t kGroup = 16;  // rows per group, one per 32-bit lane
// Software prefetch of the weight stream, two distances: into L1 8 KiB ahead and into L2
// 32 KiB ahead. Measured on one decode step's q4_0 matrices of the 1.1B shape
// (bench_kernels repacked_decode_1.1b, fraction of the read bandwidth, 1 / 2 threads):
// L1 only, 8 KiB ahead 82% / 80%; L2 only, 8 KiB 94% / 89%; L1 4 KiB + L2 32 KiB 93-99% /
// 94-95%; L1 4 KiB + L2 64 KiB 99% / 93%; none 63% / 86%. (L1 only on one 768 MB matrix:
// 1 KiB 74%, 8 KiB 84%, 16 KiB 83%, 32 KiB 67%.) L1 8 KiB against 4 KiB (both with L2 at
// 32 KiB; two alternating runs, 1 thread, GB/s): q4_0 15.4-16.1 / 15.1-15.6, q4_k
// 14.5-15.0 / 14.3-14.4, q6_k 14.9-15.1 / 14.8-14.9, iq4_xs 14.8-14.9 / 13.7-13.9.
// An L1 prefetch holds one of the core's few fill buffers until DRAM answers; the far L2
// prefetch lets those be served from L2.
inline constexpr int kPrefetchL1Bytes = 8192, kPrefetchL2Bytes = 32768;

// Prefetch the Bytes bytes (a multiple of 64) that lie the two distances ahead of p.
template <int Bytes>
inline void prefetch_ahead(const uint8_t* p) {
  const char* c = reinterpret_cast<const char*>(p);
  for (int k = 0; k < Bytes; k += 64) {
    _mm_prefetch(c + kPrefetchL1Bytes + k, _MM_HINT_T0);
    _mm_prefetch(c + kPrefetchL2Bytes + k, _MM_HINT_T1);
  }
}

// Four int8 codes read as one 32-bit value (may alias the int8 array, any alignment).
typedef int32_t Group4 __attribute__((may_alias, aligned(1)));

// Byte-wise bit From of h moved to bit To, every other bit cleared (the 16-bit shifts are
// exact for the one bit kept).
template <int From, int To>
inline __m512i move_bit(__m512i h) {
  const __m512i m = _mm512_set1_epi8(static_cast<char>(1 << To));
  if constexpr (From < To) return _mm512_and_si512(_mm512_slli_epi16(h, To - From), m);
  if constexpr (From > To) return _mm512_and_si512(_mm512_srli_epi16(h, From - To), m);
  return _mm512_and_si512(h, m);
}

// Byte-wise bits 2J..2J+1 of v as a value 0..3.
template <int J>
inline __m512i two_bits(__m512i v) {
  return _mm512_and_si512(_mm512_srli_epi16(v, 2 * J), _mm512_set1_epi8(3));
}

// The codes of 32 columns of 2- or 3-bit weights (q2_k, q3_k, int2, int3): lo[j] lane r
// byte e = the code of element 4j+e of row r, hi[j] that of element 16+4j+e. The unit: two
// vectors L_h, lane r byte e, bits 2j..2j+1: the low 2 bits of element 16h+4j+e; for 3
// bits a third vector H, lane r byte e, bit j+4h: the third bit.
template <int Bits>
inline void low_bit_codes(const uint8_t* unit, __m512i lo[4], __m512i hi[4]) {
  const __m512i l0 = _mm512_loadu_si512(unit), l1 = _mm512_loadu_si512(unit + 64);
  lo[0] = two_bits<0>(l0), lo[1] = two_bits<1>(l0), lo[2] = two_bits<2>(l0), lo[3] = two_bits<3>(l0);
  hi[0] = two_bits<0>(l1), hi[1] = two_bits<1>(l1), hi[2] = two_bits<2>(l1), hi[3] = two_bits<3>(l1);
  if constexpr (Bits == 3) {
    const __m512i h = _mm512_loadu_si512(unit + 128);
    lo[0] = _mm512_or_si512(lo[0], move_bit<0, 2>(h)), lo[1] = _mm512_or_si512(lo[1], move_bit<1, 2>(h));
    lo[2] = _mm512_or_si512(lo[2], move_bit<2, 2>(h)), lo[3] = _mm512_or_si512(lo[3], move_bit<3, 2>(h));
    hi[0] = _mm512_or_si512(hi[0], move_bit<4, 2>(h)), hi[1] = _mm512_or_si512(hi[1], move_bit<5, 2>(h));
    hi[2] = _mm512_or_si512(hi[2], move_bit<6, 2>(h)), hi[3] = _mm512_or_si512(hi[3], move_bit<7, 2>(h));
  }
}

// Writes code c (Bits = 2 or 3) of element 16h+4j+e of row r into such a unit.
template <int Bits>
inline void put_low_bit_code(uint8_t* unit, int r, int h, int j, int e, int code) {
  unit[64 * h + 4 * r + e] |= static_cast<uint8_t>((code & 3) << (2 * j));
  if constexpr (Bits == 3) unit[128 + 4 * r + e] |= static_cast<uint8_t>((code >> 2) << (j + 4 * h));
}

// One unit of 32 columns of 16 rows against NT activation rows: lo[j] / hi[j] hold the codes
// of columns 4j.. / 16+4j.. (four per row lane), value = a u + b per half (a_lo, b_lo for
// the first 16 columns, a_hi, b_hi for the next). acc += (Σ u q) a dx and bias += b Σ(dx q)
// per half; col: the unit's first column in the row. q6_k and the 2/3-bit layouts use it.
template <int NT>
inline void accumulate_unit32(const __m512i* lo, const __m512i* hi, __m512 a_lo, __m512 a_hi, __m512 b_lo, __m512 b_hi,
                              const Q8RowView* xs, int64_t col, __m512* acc, __m512* bias) {
  const int64_t s = col / 16;
  for (int n = 0; n < NT; ++n) {
    const Group4* g = reinterpret_cast<const Group4*>(xs[n].q + col);
    __m512i slo = _mm512_setzero_si512(), shi = _mm512_setzero_si512();
    for (int j = 0; j < 4; ++j) {
      slo = _mm512_dpbusd_epi32(slo, lo[j], _mm512_set1_epi32(g[j]));
      shi = _mm512_dpbusd_epi32(shi, hi[j], _mm512_set1_epi32(g[4 + j]));
    }
    const float* dl = xs[n].d_lane + 4 * s;
    acc[n] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(slo), _mm512_mul_ps(a_lo, _mm512_set1_ps(dl[0])), acc[n]);
    acc[n] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(shi), _mm512_mul_ps(a_hi, _mm512_set1_ps(dl[4])), acc[n]);
    bias[n] = _mm512_fmadd_ps(b_lo, _mm512_set1_ps(xs[n].sum[s]), bias[n]);
    bias[n] = _mm512_fmadd_ps(b_hi, _mm512_set1_ps(xs[n].sum[s + 1]), bias[n]);
  }
}

// Bytes of a tensor packed as groups of 16 rows x blocks of BlockCols columns, Packed
// bytes each.
template <int64_t BlockCols, int64_t Packed>
uint64_t packed_bytes(int64_t rows, int64_t cols) {
  return static_cast<uint64_t>((rows + kGroup - 1) / kGroup) * static_cast<uint64_t>(cols / BlockCols) * Packed;
}

// For every group and block: the packed bytes at dst filled with `pad` (rows past the end
// stay so), then fill(dst, block_bytes_of_row_r, r) for each real row r. Blocks of
// block_cols columns, block_bytes in the file and packed bytes per group.
template <typename Fill>
void repack_rows(const uint8_t* data, int64_t rows, int64_t cols, uint8_t* out, uint8_t pad, int64_t block_cols,
                 int64_t block_bytes, int64_t packed, Fill fill) {
  const int64_t nb = cols / block_cols, groups = (rows + kGroup - 1) / kGroup;
#pragma omp parallel for schedule(static) if (rows * cols >= (1 << 20))
  for (int64_t g = 0; g < groups; ++g) {
    for (int64_t b = 0; b < nb; ++b) {
      uint8_t* dst = out + (g * nb + b) * packed;
      std::memset(dst, pad, static_cast<size_t>(packed));
      for (int64_t r = 0; r < kGroup && g * kGroup + r < rows; ++r) fill(dst, data + ((g * kGroup + r) * nb + b) * block_bytes, static_cast<int>(r));
    }
  }
}

// The same with the block's sizes fixed at compile time.
template <int64_t BlockCols, int64_t BlockBytes, int64_t Packed, typename Fill>
void repack_rows(const uint8_t* data, int64_t rows, int64_t cols, uint8_t* out, uint8_t pad, Fill fill) {
  repack_rows(data, rows, cols, out, pad, BlockCols, BlockBytes, Packed, fill);
}

}  // namespace lowbit::kernels::avx512
