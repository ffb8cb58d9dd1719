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
#include "kernels/kernel_impl.h"

namespace lowbit::kernels {
namespace {

using namespace lowbit::formats;

constexpr int64_t kGroup = 16, kBlockBytes = 18, kPackedBlock = 32 + 256;
constexpr int kPrefetchBytes = 8192;

uint64_t packed_bytes(int64_t rows, int64_t cols) {
  return static_cast<uint64_t>((rows + kGroup - 1) / kGroup) * static_cast<uint64_t>(cols / 32) * kPackedBlock;
}

void repack(const uint8_t* data, int64_t rows, int64_t cols, uint8_t* out) {
  const int64_t nb = cols / 32, groups = (rows + kGroup - 1) / kGroup;
#pragma omp parallel for schedule(static) if (rows * cols >= (1 << 20))
  for (int64_t g = 0; g < groups; ++g) {
    for (int64_t b = 0; b < nb; ++b) {
      uint8_t* dst = out + (g * nb + b) * kPackedBlock;
      std::memset(dst, 0, kPackedBlock);
      for (int64_t r = 0; r < kGroup && g * kGroup + r < rows; ++r) {
        const uint8_t* blk = data + ((g * kGroup + r) * nb + b) * kBlockBytes;
        std::memcpy(dst + 2 * r, blk, 2);  // fp16 d
        for (int j = 0; j < 4; ++j) std::memcpy(dst + 32 + 64 * j + 4 * r, blk + 2 + 4 * j, 4);
      }
    }
  }
}

// Four int8 codes read as one 32-bit value (may alias the int8 array, any alignment).
typedef int32_t Group4 __attribute__((may_alias, aligned(1)));

template <bool kGrid, int NT>
void dot_group(const uint8_t* packed, int64_t group, int64_t cols, const Q8RowView* xs, float* y) {
  const int64_t nb = cols / 32;
  const uint8_t* p = packed + group * nb * kPackedBlock;
  const __m512i mask = _mm512_set1_epi8(0x0F);
  alignas(16) uint8_t lut_bytes[16];
  for (int i = 0; i < 16; ++i) lut_bytes[i] = static_cast<uint8_t>(kIq4Grid[i] + 128);
  const __m512i lut = _mm512_broadcast_i32x4(_mm_load_si128(reinterpret_cast<const __m128i*>(lut_bytes)));
  __m512 acc[NT], bias[NT];
  for (int n = 0; n < NT; ++n) acc[n] = bias[n] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b, p += kPackedBlock) {
    _mm_prefetch(reinterpret_cast<const char*>(p) + kPrefetchBytes, _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(p) + kPrefetchBytes + 64, _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(p) + kPrefetchBytes + 128, _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(p) + kPrefetchBytes + 192, _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(p) + kPrefetchBytes + 256, _MM_HINT_T0);
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
  switch (nt) {
    case 1: return dot_group<kGrid, 1>(packed, group, cols, xs, y);
    case 2: return dot_group<kGrid, 2>(packed, group, cols, xs, y);
    case 3: return dot_group<kGrid, 3>(packed, group, cols, xs, y);
    default: return dot_group<kGrid, 4>(packed, group, cols, xs, y);
  }
}

}  // namespace

extern const RepackKernels kRepackQ4_0{"q4_0", &packed_bytes, &repack, &dot<false>};
extern const RepackKernels kRepackIq4Nl{"iq4_nl", &packed_bytes, &repack, &dot<true>};

}  // namespace lowbit::kernels
