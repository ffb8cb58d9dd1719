// iq4_xs repacked for AVX-512 VNNI: 16 rows per group, per super-block of 256 columns
//   32 bytes: the 16 rows' fp16 d;
//   128 bytes: the 6-bit block scales minus 32 as int8, [block][row];
//   per block of 32 columns, 256 bytes: four vectors V_j, lane r = bytes 4j..4j+3 of the
//   row's block (low nibbles: elements 4j.., high nibbles: elements 16+4j..), as q4_0's.
// Codes go through the iq4 grid with one byte shuffle. 4.375 bits per weight (the file's
// 4.25 plus the unpacked scales). See repack_nibble32_avx512.cpp.
#include <immintrin.h>

#include <cstddef>
#include <cstring>

#include "formats/blocks.h"
#include "formats/iq4_search.h"
#include "kernels/avx512/q8_accumulate.h"
#include "kernels/avx512/repack_common.h"
#include "kernels/kernel_impl.h"

namespace lowbit::kernels {
namespace {

using namespace avx512;
using namespace lowbit::formats;

constexpr int64_t kPacked = 32 + 128 + 8 * 256;

void repack(const uint8_t* data, int64_t rows, int64_t cols, uint8_t* out) {
  repack_rows<256, sizeof(BlockIq4Xs), kPacked>(data, rows, cols, out, 0, [](uint8_t* dst, const uint8_t* blk, int r) {
    std::memcpy(dst + 2 * r, blk + offsetof(BlockIq4Xs, d), 2);
    uint16_t scales_h;
    std::memcpy(&scales_h, blk + offsetof(BlockIq4Xs, scales_h), 2);
    const uint8_t* scales_l = blk + offsetof(BlockIq4Xs, scales_l);
    for (int ib = 0; ib < 8; ++ib) {
      const int ls = ((scales_l[ib / 2] >> (4 * (ib % 2))) & 0xF) | (((scales_h >> (2 * ib)) & 3) << 4);
      dst[32 + 16 * ib + r] = static_cast<uint8_t>(static_cast<int8_t>(ls - 32));
      for (int j = 0; j < 4; ++j) std::memcpy(dst + 160 + 256 * ib + 64 * j + 4 * r, blk + offsetof(BlockIq4Xs, qs) + 16 * ib + 4 * j, 4);
    }
  });
}


template <int NT>
void dot_group(const uint8_t* packed, int64_t group, int64_t cols, const Q8RowView* xs, float* y) {
  const int64_t ns = cols / 256;
  const uint8_t* p = packed + group * ns * kPacked;
  const __m512i mask = _mm512_set1_epi8(0x0F);
  const __m512i lut = iq4_lut();
  __m512 acc[NT], bias[NT];
  for (int n = 0; n < NT; ++n) acc[n] = bias[n] = _mm512_setzero_ps();
  for (int64_t i = 0; i < ns; ++i, p += kPacked) {
    const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    for (int ib = 0; ib < 8; ++ib) {
      const uint8_t* v = p + 160 + 256 * ib;
      prefetch_ahead<256>(v);
      const __m512 a = _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 32 + 16 * ib)))));
      __m512i lo[4], hi[4];
      for (int j = 0; j < 4; ++j) {
        const __m512i w = _mm512_loadu_si512(v + 64 * j);
        lo[j] = _mm512_shuffle_epi8(lut, _mm512_and_si512(w, mask));
        hi[j] = _mm512_shuffle_epi8(lut, _mm512_and_si512(_mm512_srli_epi16(w, 4), mask));
      }
      for (int n = 0; n < NT; ++n) {
        const Group4* g = reinterpret_cast<const Group4*>(xs[n].q + 256 * i + 32 * ib);
        __m512i slo = _mm512_setzero_si512(), shi = _mm512_setzero_si512();
        for (int j = 0; j < 4; ++j) {
          slo = _mm512_dpbusd_epi32(slo, lo[j], _mm512_set1_epi32(g[j]));
          shi = _mm512_dpbusd_epi32(shi, hi[j], _mm512_set1_epi32(g[4 + j]));
        }
        const int64_t s = 16 * i + 2 * ib;
        const float* dl = xs[n].d_lane + 4 * s;
        acc[n] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(slo), _mm512_mul_ps(a, _mm512_set1_ps(dl[0])), acc[n]);
        acc[n] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(shi), _mm512_mul_ps(a, _mm512_set1_ps(dl[4])), acc[n]);
        bias[n] = _mm512_fmadd_ps(a, _mm512_set1_ps(xs[n].sum[s] + xs[n].sum[s + 1]), bias[n]);
      }
    }
  }
  const __m512 offset = _mm512_set1_ps(-128.0f);  // codes are grid + 128
  for (int n = 0; n < NT; ++n) _mm512_storeu_ps(y + 16 * n, _mm512_fmadd_ps(bias[n], offset, acc[n]));
}

void dot(const uint8_t* packed, int64_t group, int64_t cols, const Q8RowView* xs, int nt, float* y) {
  with_nt(nt, [&](auto n) { dot_group<decltype(n)::value>(packed, group, cols, xs, y); });
}

}  // namespace

extern const RepackKernels kRepackIq4Xs{"iq4_xs", &packed_bytes<256, kPacked>, &repack, &dot};

}  // namespace lowbit::kernels
