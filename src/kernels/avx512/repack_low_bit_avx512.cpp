// The 2- and 3-bit super-block formats q2_k, q3_k, tq1_0 and tq2_0 repacked for AVX-512
// VNNI: 16 rows per group, per super-block of 256 columns a header, then per 32 columns k
// (sub-blocks 2k and 2k+1) one unit of codes:
//   q2_k header, 320 bytes: the 16 rows' fp16 d, fp16 dmin, then the scale bytes (low
//        nibble scale, high nibble min) [sub-block][row]; unit, 128 bytes: two vectors
//        L_h, lane r byte e, bits 2j..2j+1: the code of element 16h+4j+e of row r.
//   q3_k header, 288 bytes: the 16 rows' fp16 d, then the signed 6-bit scales as int8
//        [sub-block][row]; unit, 192 bytes: L_0, L_1 as for q2_k with the low 2 bits of the
//        codes, and one vector H, lane r byte e, bit j + 4h: the third bit of element
//        16h+4j+e.
//   tq1_0 and tq2_0 header, 32 bytes: the 16 rows' fp16 d; units as q2_k's, codes t in
//        {0, 1, 2} (value (t - 1) d).
// q2_k and tq2_0 keep the file's 2.625 and 2.0625 bits per weight; q3_k takes 3.5625
// instead of 3.4375 (its scales unpacked to bytes), tq1_0 2.0625 instead of 1.6875 (its
// base-3 packing undone). The codes of one unit against an activation row are four
// VPDPBUSD per sub-block, as in repack_q6_k_avx512.cpp.
#include <immintrin.h>

#include <cstddef>
#include <cstring>

#include "formats/blocks.h"
#include "formats/kquant_scales.h"
#include "kernels/avx512/repack_common.h"
#include "kernels/kernel_impl.h"
#include "kernels/ternary_codes.h"

namespace lowbit::kernels {
namespace {

using namespace avx512;
using namespace lowbit::formats;

inline __m512 bytes_to_ps(__m128i b) { return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(b)); }
inline __m512 fp16x16(const uint8_t* p) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
inline __m128i load16(const uint8_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }

struct Q2K {
  static constexpr int64_t kHeader = 64 + 256, kUnit = 128, kPacked = kHeader + 8 * kUnit;
  static constexpr int64_t kBlockBytes = sizeof(BlockQ2_K);

  static int code_of(const uint8_t* blk, int e) {  // element e of 0..255
    const int s = e / 16;
    const uint8_t* q = blk + offsetof(BlockQ2_K, qs) + 32 * (s / 8) + 16 * (s % 2);
    return (q[e % 16] >> (2 * ((s % 8) / 2))) & 3;
  }
  static void codes(const uint8_t* blk, uint8_t* out) {
    for (int e = 0; e < 256; ++e) out[e] = static_cast<uint8_t>(code_of(blk, e));
  }
  static void header(uint8_t* dst, const uint8_t* blk, int r) {
    std::memcpy(dst + 2 * r, blk + offsetof(BlockQ2_K, d), 2);
    std::memcpy(dst + 32 + 2 * r, blk + offsetof(BlockQ2_K, dmin), 2);
    for (int s = 0; s < 16; ++s) dst[64 + 16 * s + r] = blk[offsetof(BlockQ2_K, scales) + s];
  }
  // Per super-block: the rows' d and dmin.
  struct Super {
    __m512 d, dmin;
    const uint8_t* p;
    explicit Super(const uint8_t* p_) : d(fp16x16(p_)), dmin(fp16x16(p_ + 32)), p(p_) {}
    // value = a u + b for sub-block s: a = d sc, b = -dmin m.
    void map(int s, __m512* a, __m512* b) const {
      const __m512i sm = _mm512_cvtepu8_epi32(load16(p + 64 + 16 * s));
      *a = _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_and_si512(sm, _mm512_set1_epi32(0xF))));
      *b = _mm512_mul_ps(dmin, _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_setzero_si512(), _mm512_srli_epi32(sm, 4))));
    }
  };
  static constexpr int kBits = 2;
};

struct Q3K {
  static constexpr int64_t kHeader = 32 + 256, kUnit = 192, kPacked = kHeader + 8 * kUnit;
  static constexpr int64_t kBlockBytes = sizeof(BlockQ3_K);

  static int code_of(const uint8_t* blk, int e) {  // low 2 bits + 4 * high bit
    const int within = e % 128, l = within % 32;
    const int low = (blk[offsetof(BlockQ3_K, qs) + 32 * (e / 128) + l] >> (2 * (within / 32))) & 3;
    const int high = (blk[offsetof(BlockQ3_K, hmask) + l] >> (e / 32)) & 1;
    return low + 4 * high;
  }
  static void codes(const uint8_t* blk, uint8_t* out) {
    for (int e = 0; e < 256; ++e) out[e] = static_cast<uint8_t>(code_of(blk, e));
  }
  static void header(uint8_t* dst, const uint8_t* blk, int r) {
    std::memcpy(dst + 2 * r, blk + offsetof(BlockQ3_K, d), 2);
    for (int s = 0; s < 16; ++s) dst[32 + 16 * s + r] = static_cast<uint8_t>(q3_k_scale(blk + offsetof(BlockQ3_K, scales), s));
  }
  struct Super {
    __m512 d;
    const uint8_t* p;
    explicit Super(const uint8_t* p_) : d(fp16x16(p_)), p(p_) {}
    // value = d sc (u - 4): a = d sc, b = -4 a.
    void map(int s, __m512* a, __m512* b) const {
      *a = _mm512_mul_ps(d, bytes_to_ps(load16(p + 32 + 16 * s)));
      *b = _mm512_mul_ps(*a, _mm512_set1_ps(-4.0f));
    }
  };
  static constexpr int kBits = 3;
};

// tq1_0 / tq2_0: Name the format; codes through ternary_codes.h.
template <const char* Name, int64_t BlockBytes>
struct Ternary {
  static constexpr int64_t kHeader = 32, kUnit = 128, kPacked = kHeader + 8 * kUnit;
  static constexpr int kBits = 2;
  static constexpr int64_t kBlockBytes = BlockBytes;
  static void codes(const uint8_t* blk, uint8_t* out) {
    static const Format& f = format_by_name(Name);
    ternary_codes(f, blk, out);
  }
  static void header(uint8_t* dst, const uint8_t* blk, int r) { std::memcpy(dst + 2 * r, blk + BlockBytes - 2, 2); }
  struct Super {
    __m512 d;
    explicit Super(const uint8_t* p) : d(fp16x16(p)) {}
    void map(int, __m512* a, __m512* b) const {  // value = d (t - 1)
      *a = d;
      *b = _mm512_sub_ps(_mm512_setzero_ps(), d);
    }
  };
};
constexpr char kTq1_0[] = "tq1_0", kTq2_0[] = "tq2_0";
using Tq1_0 = Ternary<kTq1_0, 54>;
using Tq2_0 = Ternary<kTq2_0, 66>;

template <typename L>
void repack(const uint8_t* data, int64_t rows, int64_t cols, uint8_t* out) {
  repack_rows<256, L::kBlockBytes, L::kPacked>(data, rows, cols, out, 0, [](uint8_t* dst, const uint8_t* blk, int r) {
    L::header(dst, blk, r);
    uint8_t codes[256];
    L::codes(blk, codes);
    for (int k = 0; k < 8; ++k) {
      uint8_t* unit = dst + L::kHeader + L::kUnit * k;
      for (int h = 0; h < 2; ++h) {
        for (int j = 0; j < 4; ++j) {
          for (int e = 0; e < 4; ++e) put_low_bit_code<L::kBits>(unit, r, h, j, e, codes[32 * k + 16 * h + 4 * j + e]);
        }
      }
    }
  });
}

// y: (NT, 16) for the group's 16 rows (accumulate_unit32 per 32 columns).
template <typename L, int NT>
void dot_group(const uint8_t* packed, int64_t group, int64_t cols, const Q8RowView* xs, float* y) {
  const int64_t ns = cols / 256;
  const uint8_t* p = packed + group * ns * L::kPacked;
  __m512 acc[NT], bias[NT];
  for (int n = 0; n < NT; ++n) acc[n] = bias[n] = _mm512_setzero_ps();
  for (int64_t i = 0; i < ns; ++i, p += L::kPacked) {
    const typename L::Super super(p);
    for (int k = 0; k < 8; ++k) {
      const uint8_t* unit = p + L::kHeader + L::kUnit * k;
      prefetch_ahead<L::kUnit>(unit);
      __m512i lo[4], hi[4];
      low_bit_codes<L::kBits>(unit, lo, hi);
      __m512 a_lo, b_lo, a_hi, b_hi;
      super.map(2 * k, &a_lo, &b_lo);
      super.map(2 * k + 1, &a_hi, &b_hi);
      accumulate_unit32<NT>(lo, hi, a_lo, a_hi, b_lo, b_hi, xs, 256 * i + 32 * k, acc, bias);
    }
  }
  for (int n = 0; n < NT; ++n) _mm512_storeu_ps(y + 16 * n, _mm512_add_ps(acc[n], bias[n]));
}

template <typename L>
void dot(const uint8_t* packed, int64_t group, int64_t cols, const Q8RowView* xs, int nt, float* y) {
  with_nt(nt, [&](auto n) { dot_group<L, decltype(n)::value>(packed, group, cols, xs, y); });
}

}  // namespace

extern const RepackKernels kRepackQ2_K{"q2_k", &packed_bytes<256, Q2K::kPacked>, &repack<Q2K>, &dot<Q2K>};
extern const RepackKernels kRepackQ3_K{"q3_k", &packed_bytes<256, Q3K::kPacked>, &repack<Q3K>, &dot<Q3K>};
extern const RepackKernels kRepackTq1_0{"tq1_0", &packed_bytes<256, Tq1_0::kPacked>, &repack<Tq1_0>, &dot<Tq1_0>};
extern const RepackKernels kRepackTq2_0{"tq2_0", &packed_bytes<256, Tq2_0::kPacked>, &repack<Tq2_0>, &dot<Tq2_0>};

}  // namespace lowbit::kernels
