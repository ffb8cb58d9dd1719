// q4_0 and iq4_nl repacked for AVX-512 VNNI (ggml's q4_0 "8x8" repack is the same idea):
// 16 rows per group, per block of 32 columns
//   32 bytes: the 16 rows' fp16 scales;
//   256 bytes: four 64-byte vectors V_j, lane r = bytes 4j..4j+3 of row r's block (low
//              nibbles: elements 4j..4j+3, high nibbles: elements 16+4j..16+4j+3).
// One VPDPBUSD then multiplies 4 codes of all 16 rows by 4 broadcast activation codes, and
// each sub-block's sums stay exact integers per row until its scales are applied. Per 512
// multiply-accumulates that is about 30 vector instructions, against 90 for the per-row
// fused kernel, which is what lets decode reach the read bandwidth.
#include <immintrin.h>

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

constexpr int64_t kBlockBytes = 18, kPackedBlock = 32 + 256;

void repack(const uint8_t* data, int64_t rows, int64_t cols, uint8_t* out) {
  repack_rows<32, kBlockBytes, kPackedBlock>(data, rows, cols, out, 0, [](uint8_t* dst, const uint8_t* blk, int r) {
    std::memcpy(dst + 2 * r, blk, 2);  // fp16 d
    for (int j = 0; j < 4; ++j) std::memcpy(dst + 32 + 64 * j + 4 * r, blk + 2 + 4 * j, 4);
  });
}


template <bool kGrid, int NT>
void dot_group(const uint8_t* packed, int64_t group, int64_t cols, const Q8RowView* xs, float* y) {
  const int64_t nb = cols / 32;
  const uint8_t* p = packed + group * nb * kPackedBlock;
  const __m512i mask = _mm512_set1_epi8(0x0F);
  const __m512i lut = iq4_lut();
  __m512 acc[NT], bias[NT];
  for (int n = 0; n < NT; ++n) acc[n] = bias[n] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b, p += kPackedBlock) {
    for (int k = 0; k < kPackedBlock; k += 64) _mm_prefetch(reinterpret_cast<const char*>(p) + kRepackPrefetchBytes + k, _MM_HINT_T0);
    const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    __m512i lo_sum[NT], hi_sum[NT];
    for (int n = 0; n < NT; ++n) lo_sum[n] = hi_sum[n] = _mm512_setzero_si512();
    for (int j = 0; j < 4; ++j) {
      const __m512i v = _mm512_loadu_si512(p + 32 + 64 * j);
      __m512i lo = _mm512_and_si512(v, mask), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), mask);
      if (kGrid) {
        lo = _mm512_shuffle_epi8(lut, lo);
        hi = _mm512_shuffle_epi8(lut, hi);
      }
      for (int n = 0; n < NT; ++n) {
        const Group4* g = reinterpret_cast<const Group4*>(xs[n].q + 32 * b);
        lo_sum[n] = _mm512_dpbusd_epi32(lo_sum[n], lo, _mm512_set1_epi32(g[j]));
        hi_sum[n] = _mm512_dpbusd_epi32(hi_sum[n], hi, _mm512_set1_epi32(g[4 + j]));
      }
    }
    for (int n = 0; n < NT; ++n) {
      const float* dl = xs[n].d_lane + 8 * b;  // sub-block 2b at lane 8b, 2b+1 at 8b+4
      acc[n] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(lo_sum[n]), _mm512_mul_ps(d, _mm512_set1_ps(dl[0])), acc[n]);
      acc[n] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(hi_sum[n]), _mm512_mul_ps(d, _mm512_set1_ps(dl[4])), acc[n]);
      bias[n] = _mm512_fmadd_ps(d, _mm512_set1_ps(xs[n].sum[2 * b] + xs[n].sum[2 * b + 1]), bias[n]);
    }
  }
  const __m512 offset = _mm512_set1_ps(kGrid ? -128.0f : -8.0f);
  for (int n = 0; n < NT; ++n) _mm512_storeu_ps(y + 16 * n, _mm512_fmadd_ps(bias[n], offset, acc[n]));
}

template <bool kGrid>
void dot(const uint8_t* packed, int64_t group, int64_t cols, const Q8RowView* xs, int nt, float* y) {
  with_nt(nt, [&](auto n) { dot_group<kGrid, decltype(n)::value>(packed, group, cols, xs, y); });
}

}  // namespace

extern const RepackKernels kRepackQ4_0{"q4_0", &packed_bytes<32, kPackedBlock>, &repack, &dot<false>};
extern const RepackKernels kRepackIq4Nl{"iq4_nl", &packed_bytes<32, kPackedBlock>, &repack, &dot<true>};

}  // namespace lowbit::kernels
