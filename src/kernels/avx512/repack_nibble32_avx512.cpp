// The 32-element nibble formats q4_0, iq4_nl, q4_1, q5_0, q5_1 and mxfp4 repacked for
// AVX-512 VNNI (ggml's q4_0 "8x8" repack is the same idea): 16 rows per group, per block of
// 32 columns
//   32 bytes: the 16 rows' fp16 scales d (mxfp4: 16 bytes, their E8M0 exponents plus one,
//             so that the zero bytes of padding rows read as the scale 0);
//   32 bytes (q4_1, q5_1): the 16 rows' fp16 mins m;
//   64 bytes (q5_0, q5_1): lane r = row r's qh (the fifth bits, a little-endian u32);
//   256 bytes: four 64-byte vectors V_j, lane r = bytes 4j..4j+3 of row r's qs (low
//              nibbles: elements 4j..4j+3, high nibbles: elements 16+4j..16+4j+3).
// Values: q4_0 d(q - 8), iq4_nl d·grid[q] (grid + 128 as unsigned codes), q5_0 d(q - 16),
// q4_1 and q5_1 d q + m, mxfp4 d·e2m1x2[q] (+ 12 as unsigned codes; d = 2^(e-127) / 2).
// One VPDPBUSD then multiplies 4 codes of all 16 rows by 4 broadcast activation codes, and
// each sub-block's sums stay exact integers per row until its scales are applied. Per 512
// multiply-accumulates that is about 30 vector instructions, against 90 for the per-row
// fused kernel, which is what lets decode reach the read bandwidth.
#include <immintrin.h>

#include <cstring>

#include "formats/blocks.h"
#include "formats/iq4_search.h"
#include "formats/mxfp4_codes.h"
#include "kernels/avx512/q8_accumulate.h"
#include "kernels/avx512/repack_common.h"
#include "kernels/kernel_impl.h"

namespace lowbit::kernels {
namespace {

using namespace avx512;
using namespace lowbit::formats;

enum class Nibble32 { kQ4_0, kIq4Nl, kQ4_1, kQ5_0, kQ5_1, kMxfp4 };

template <Nibble32 K>
struct Layout {
  static constexpr bool kGrid = K == Nibble32::kIq4Nl || K == Nibble32::kMxfp4;
  static constexpr bool kE8m0 = K == Nibble32::kMxfp4;  // a one-byte exponent, not an fp16 d
  static constexpr int64_t kScaleBytes = kE8m0 ? 1 : 2;
  static constexpr bool kMin = K == Nibble32::kQ4_1 || K == Nibble32::kQ5_1;
  static constexpr bool kHigh = K == Nibble32::kQ5_0 || K == Nibble32::kQ5_1;
  static constexpr int64_t kBlockBytes = kScaleBytes + 16 + (kMin ? 2 : 0) + (kHigh ? 4 : 0);
  static constexpr int64_t kMinAt = 16 * kScaleBytes, kHighAt = kMinAt + (kMin ? 32 : 0), kCodesAt = kHighAt + (kHigh ? 64 : 0);
  static constexpr int64_t kPacked = kCodesAt + 256;
  // Offset of the code inside the file's block: d [m] [qh] qs.
  static constexpr int64_t kQsInBlock = kScaleBytes + (kMin ? 2 : 0) + (kHigh ? 4 : 0);
  // The constant the d-weighted activation sums are multiplied by (0: the min term instead).
  static constexpr float kOffset = K == Nibble32::kQ4_0 ? -8.0f : K == Nibble32::kIq4Nl ? -128.0f
                                 : K == Nibble32::kQ5_0 ? -16.0f : K == Nibble32::kMxfp4 ? -12.0f : 0.0f;
};

template <Nibble32 K>
void repack(const uint8_t* data, int64_t rows, int64_t cols, uint8_t* out) {
  using L = Layout<K>;
  repack_rows<32, L::kBlockBytes, L::kPacked>(data, rows, cols, out, 0, [](uint8_t* dst, const uint8_t* blk, int r) {
    if constexpr (L::kE8m0) {  // e + 1 (e = 255, NaN, is refused when a model is loaded)
      dst[r] = static_cast<uint8_t>(blk[0] == 255 ? 255 : blk[0] + 1);
    } else {
      std::memcpy(dst + 2 * r, blk, 2);  // fp16 d
    }
    if constexpr (L::kMin) std::memcpy(dst + L::kMinAt + 2 * r, blk + 2, 2);
    if constexpr (L::kHigh) std::memcpy(dst + L::kHighAt + 4 * r, blk + 2 + (L::kMin ? 2 : 0), 4);
    for (int j = 0; j < 4; ++j) std::memcpy(dst + L::kCodesAt + 64 * j + 4 * r, blk + L::kQsInBlock + 4 * j, 4);
  });
}

// Bits 0..3 of each 32-bit lane to bit 4 of its bytes 0..3: x·0x00204081 puts bit b at 8b
// (the four copies do not overlap), then mask and shift.
inline __m512i spread_fifth_bits(__m512i x) {
  const __m512i spread = _mm512_mullo_epi32(_mm512_and_si512(x, _mm512_set1_epi32(0xF)), _mm512_set1_epi32(0x00204081));
  return _mm512_slli_epi32(_mm512_and_si512(spread, _mm512_set1_epi32(0x01010101)), 4);
}

// mxfp4's doubled E2M1 values + 12 as unsigned codes in every 128-bit lane, for VPSHUFB.
inline __m512i mxfp4_lut() {
  alignas(16) uint8_t lut[16];
  for (int i = 0; i < 16; ++i) lut[i] = static_cast<uint8_t>(formats::kE2M1x2[i] + 12);
  return _mm512_broadcast_i32x4(_mm_load_si128(reinterpret_cast<const __m128i*>(lut)));
}

// The 16 rows' scales 2^(e-127) / 2 from their stored bytes e + 1: (e + 1 - 1) << 23 is the
// float 2^(e-127) for e >= 1; e = 0 is the subnormal 2^-127 (bits 0x00400000), as
// e8m0_to_fp32 gives; a stored 0 (a padding row) is the scale 0.
inline __m512 e8m0_half_scales(const uint8_t* p) {
  const __m512i e1 = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  const __m512i one = _mm512_set1_epi32(1);
  __m512i bits = _mm512_slli_epi32(_mm512_sub_epi32(e1, one), 23);
  bits = _mm512_mask_blend_epi32(_mm512_cmpeq_epi32_mask(e1, one), bits, _mm512_set1_epi32(0x00400000));
  bits = _mm512_maskz_mov_epi32(_mm512_cmpneq_epi32_mask(e1, _mm512_setzero_si512()), bits);
  return _mm512_mul_ps(_mm512_castsi512_ps(bits), _mm512_set1_ps(0.5f));
}

template <Nibble32 K, int NT>
void dot_group(const uint8_t* packed, int64_t group, int64_t cols, const Q8RowView* xs, float* y) {
  using L = Layout<K>;
  const int64_t nb = cols / 32;
  const uint8_t* p = packed + group * nb * L::kPacked;
  const __m512i mask = _mm512_set1_epi8(0x0F);
  const __m512i lut = L::kE8m0 ? mxfp4_lut() : iq4_lut();
  __m512 acc[NT], bias[NT];
  for (int n = 0; n < NT; ++n) acc[n] = bias[n] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b, p += L::kPacked) {
    prefetch_ahead<(L::kPacked + 63) / 64 * 64>(p);
    const __m512 d = L::kE8m0 ? e8m0_half_scales(p) : _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    __m512i qh = _mm512_setzero_si512();
    if constexpr (L::kHigh) qh = _mm512_loadu_si512(p + L::kHighAt);
    __m512i lo_sum[NT], hi_sum[NT];
    for (int n = 0; n < NT; ++n) lo_sum[n] = hi_sum[n] = _mm512_setzero_si512();
    for (int j = 0; j < 4; ++j) {
      const __m512i v = _mm512_loadu_si512(p + L::kCodesAt + 64 * j);
      __m512i lo = _mm512_and_si512(v, mask), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), mask);
      if constexpr (L::kHigh) {  // elements 4j.. take qh bits 4j.., elements 16+4j.. bits 16+4j..
        lo = _mm512_or_si512(lo, spread_fifth_bits(_mm512_srli_epi32(qh, 4 * j)));
        hi = _mm512_or_si512(hi, spread_fifth_bits(_mm512_srli_epi32(qh, 16 + 4 * j)));
      }
      if constexpr (L::kGrid) {
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
      // The block's constant term: offset·d or the min m, times the block's activation sum.
      const __m512 c = L::kMin ? _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + L::kMinAt))) : d;
      bias[n] = _mm512_fmadd_ps(c, _mm512_set1_ps(xs[n].sum[2 * b] + xs[n].sum[2 * b + 1]), bias[n]);
    }
  }
  const __m512 offset = _mm512_set1_ps(L::kMin ? 1.0f : L::kOffset);
  for (int n = 0; n < NT; ++n) _mm512_storeu_ps(y + 16 * n, _mm512_fmadd_ps(bias[n], offset, acc[n]));
}

template <Nibble32 K>
void dot(const uint8_t* packed, int64_t group, int64_t cols, const Q8RowView* xs, int nt, float* y) {
  with_nt(nt, [&](auto n) { dot_group<K, decltype(n)::value>(packed, group, cols, xs, y); });
}

template <Nibble32 K>
constexpr RepackKernels kernels_for(std::string_view format) {
  return {format, &packed_bytes<32, Layout<K>::kPacked>, &repack<K>, &dot<K>};
}

}  // namespace

extern const RepackKernels kRepackQ4_0 = kernels_for<Nibble32::kQ4_0>("q4_0");
extern const RepackKernels kRepackIq4Nl = kernels_for<Nibble32::kIq4Nl>("iq4_nl");
extern const RepackKernels kRepackQ4_1 = kernels_for<Nibble32::kQ4_1>("q4_1");
extern const RepackKernels kRepackQ5_0 = kernels_for<Nibble32::kQ5_0>("q5_0");
extern const RepackKernels kRepackQ5_1 = kernels_for<Nibble32::kQ5_1>("q5_1");
extern const RepackKernels kRepackMxfp4 = kernels_for<Nibble32::kMxfp4>("mxfp4");

}  // namespace lowbit::kernels
