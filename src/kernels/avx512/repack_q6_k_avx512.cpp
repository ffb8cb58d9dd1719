// q6_k repacked for AVX-512 VNNI: 16 rows per group, per super-block of 256 columns
//   32 bytes: the 16 rows' fp16 d;
//   256 bytes: the int8 sub-scales, [sub-block][row];
//   per 32 columns k (sub-blocks 2k, 2k+1), 384 bytes:
//     four vectors V_j, lane r byte e: low 4 bits of element 4j+e (low nibble) and of
//     element 16+4j+e (high nibble) of row r;
//     two vectors H_h, lane r byte e, bits 2j..2j+1: the top 2 bits of element 16h+4j+e.
// The same 6.5625 bits per weight as the file. See repack_nibble32_avx512.cpp.
#include <immintrin.h>

#include <cstddef>
#include <cstring>

#include "formats/blocks.h"
#include "kernels/avx512/repack_common.h"
#include "kernels/kernel_impl.h"

namespace lowbit::kernels {
namespace {

using namespace avx512;
using namespace lowbit::formats;

constexpr int64_t kUnit = 384, kPacked = 32 + 256 + 8 * kUnit;

// The 6-bit code of element e (0..255) of a q6_k block.
int code_of(const uint8_t* blk, int e) {
  const uint8_t* ql = blk + offsetof(BlockQ6_K, ql) + 64 * (e / 128);
  const uint8_t* qh = blk + offsetof(BlockQ6_K, qh) + 32 * (e / 128);
  const int w = e % 128, l = w % 32, quarter = w / 32;  // elements l, l+32, l+64, l+96
  const uint8_t packed_low = quarter % 2 == 0 ? ql[l] : ql[l + 32];
  const int low = quarter < 2 ? packed_low & 0xF : packed_low >> 4;
  return low | (((qh[l] >> (2 * quarter)) & 3) << 4);
}

void repack(const uint8_t* data, int64_t rows, int64_t cols, uint8_t* out) {
  repack_rows<256, sizeof(BlockQ6_K), kPacked>(data, rows, cols, out, 0, [](uint8_t* dst, const uint8_t* blk, int r) {
    std::memcpy(dst + 2 * r, blk + offsetof(BlockQ6_K, d), 2);
    for (int s = 0; s < 16; ++s) dst[32 + 16 * s + r] = blk[offsetof(BlockQ6_K, scales) + s];
    for (int k = 0; k < 8; ++k) {
      uint8_t* unit = dst + 288 + kUnit * k;
      for (int j = 0; j < 4; ++j) {
        for (int e = 0; e < 4; ++e) {
          const int q0 = code_of(blk, 32 * k + 4 * j + e), q1 = code_of(blk, 32 * k + 16 + 4 * j + e);
          unit[64 * j + 4 * r + e] = static_cast<uint8_t>((q0 & 0xF) | ((q1 & 0xF) << 4));
          unit[256 + 4 * r + e] |= static_cast<uint8_t>((q0 >> 4) << (2 * j));
          unit[320 + 4 * r + e] |= static_cast<uint8_t>((q1 >> 4) << (2 * j));
        }
      }
    }
  });
}


// Bits 4-5 of every byte: the top 2 bits of group j (bits 2j..2j+1 of each byte of h).
inline __m512i top_bits(__m512i h, int j) {
  const __m512i m = _mm512_set1_epi8(0x30);
  switch (j) {
    case 0: return _mm512_and_si512(_mm512_slli_epi16(h, 4), m);
    case 1: return _mm512_and_si512(_mm512_slli_epi16(h, 2), m);
    case 2: return _mm512_and_si512(h, m);
    default: return _mm512_and_si512(_mm512_srli_epi16(h, 2), m);
  }
}

inline __m512 scales_at(const uint8_t* p, __m512 d) {
  return _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)))));
}

template <int NT>
void dot_group(const uint8_t* packed, int64_t group, int64_t cols, const Q8RowView* xs, float* y) {
  const int64_t ns = cols / 256;
  const uint8_t* p = packed + group * ns * kPacked;
  const __m512i mask = _mm512_set1_epi8(0x0F);
  __m512 acc[NT], bias[NT];
  for (int n = 0; n < NT; ++n) acc[n] = bias[n] = _mm512_setzero_ps();
  for (int64_t i = 0; i < ns; ++i, p += kPacked) {
    const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    for (int k = 0; k < 8; ++k) {
      const uint8_t* unit = p + 288 + kUnit * k;
      prefetch_ahead<kUnit>(unit);
      const __m512i h0 = _mm512_loadu_si512(unit + 256), h1 = _mm512_loadu_si512(unit + 320);
      __m512i lo[4], hi[4];
      for (int j = 0; j < 4; ++j) {
        const __m512i v = _mm512_loadu_si512(unit + 64 * j);
        lo[j] = _mm512_or_si512(_mm512_and_si512(v, mask), top_bits(h0, j));
        hi[j] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(v, 4), mask), top_bits(h1, j));
      }
      const __m512 a_lo = scales_at(p + 32 + 16 * (2 * k), d), a_hi = scales_at(p + 32 + 16 * (2 * k + 1), d);
      // value = a (q - 32): b = a here, the -32 applied once at the end
      accumulate_unit32<NT>(lo, hi, a_lo, a_hi, a_lo, a_hi, xs, 256 * i + 32 * k, acc, bias);
    }
  }
  const __m512 offset = _mm512_set1_ps(-32.0f);  // value = d sc (q - 32)
  for (int n = 0; n < NT; ++n) _mm512_storeu_ps(y + 16 * n, _mm512_fmadd_ps(bias[n], offset, acc[n]));
}

void dot(const uint8_t* packed, int64_t group, int64_t cols, const Q8RowView* xs, int nt, float* y) {
  with_nt(nt, [&](auto n) { dot_group<decltype(n)::value>(packed, group, cols, xs, y); });
}

}  // namespace

extern const RepackKernels kRepackQ6_K{"q6_k", &packed_bytes<256, kPacked>, &repack, &dot};

}  // namespace lowbit::kernels
