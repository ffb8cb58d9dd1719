// AVX-512 VNNI fused decode kernels: a weight row read in its file's blocks, unpacked to
// unsigned codes in registers and dotted with up to 4 Q8 activation rows, no buffer in
// between. One function per format (two share the nibble layout of q4_0 and iq4_nl). The
// scalar unpackers in ref/unpack_u8.cpp define what each must compute.
#include <immintrin.h>

#include <cstddef>
#include <cstring>

#include "formats/blocks.h"
#include "formats/iq4_search.h"
#include "formats/kquant_scales.h"
#include "kernels/avx512/q8_accumulate.h"
#include "kernels/kernel_impl.h"

namespace lowbit::kernels {
namespace {

using namespace avx512;
using namespace lowbit::formats;

// Decode streams each row once: ask for the bytes this far ahead (the hardware prefetcher
// alone left the kernels waiting on the first load of each line; on the 1.1B q4_0 model
// 1 KiB ahead took decode from 20 to 27 tok/s, 4 KiB to 32, more gave no more).
constexpr int kPrefetchBytes = 4096;

uint16_t half_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return h;
}

// Two fp16 values → [v0, v1, 0, 0] (combined in a general register: one move to a vector).
__m128 two_halves(const uint8_t* p0, const uint8_t* p1) {
  const uint32_t pair = static_cast<uint32_t>(half_at(p0)) | (static_cast<uint32_t>(half_at(p1)) << 16);
  return _mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(pair)));
}

// Two blocks' 16 packed bytes (elements j and j+16 in byte j) → 64 nibbles in element
// order: each block broadcast to two 128-bit lanes straight from memory, the second lane of
// each shifted right by 4, then masked. Fewer shuffles than unpacking and reordering.
__m512i nibbles_of_blocks_at(const uint8_t* q0, const uint8_t* q1) {
  const __m512i z = _mm512_mask_broadcast_i32x4(_mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q0))),
                                                0xFF00, _mm_loadu_si128(reinterpret_cast<const __m128i*>(q1)));
  const __m512i shift = _mm512_set_epi64(4, 4, 0, 0, 4, 4, 0, 0);
  return _mm512_and_si512(_mm512_srlv_epi64(z, shift), _mm512_set1_epi8(0x0F));
}

// [lo(q0) | lo(q1) | hi(q0) | hi(q1)] → [lo(q0) | hi(q0) | lo(q1) | hi(q1)]: two blocks of
// 16 packed bytes to 64 nibbles in element order (low nibbles are elements 0..15).
__m512i nibbles_of_two_blocks(__m256i v) {
  const __m256i mask = _mm256_set1_epi8(0x0F);
  const __m256i lo = _mm256_and_si256(v, mask), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), mask);
  const __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
  return _mm512_shuffle_i64x2(z, z, 0xD8);
}

UnpackU8Fn unpack_of(std::string_view name) {
  for (const UnpackEntry& e : unpack_table()) {
    if (e.format == name) return e.fn;
  }
  return nullptr;
}

// Four fp16 values at stride `stride` → [v0, v1, v2, v3] (one move to a vector register).
__m128 four_halves(const uint8_t* p, int64_t stride) {
  const uint64_t v = static_cast<uint64_t>(half_at(p)) | (static_cast<uint64_t>(half_at(p + stride)) << 16) |
                     (static_cast<uint64_t>(half_at(p + 2 * stride)) << 32) | (static_cast<uint64_t>(half_at(p + 3 * stride)) << 48);
  return _mm_cvtph_ps(_mm_cvtsi64_si128(static_cast<long long>(v)));
}

// Lanes 0-7 get v[k], lanes 8-15 v[k+1].
inline __m512 expand_pair_at(__m128 v, int k) {
  const __m512i idx = _mm512_set_epi32(k + 1, k + 1, k + 1, k + 1, k + 1, k + 1, k + 1, k + 1, k, k, k, k, k, k, k, k);
  return _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(v));
}

// q4_0 (kGrid false: u = nibble, b = -8d) and iq4_nl (kGrid true: u = grid + 128, b = -128d):
// 18-byte blocks of 32, four blocks (two 64-element chunks) per step, so that the four
// scales convert together; the offsets accumulate d and are scaled once per row. A last
// odd pair goes through the two-block step, an odd block through the scalar unpacker.
template <bool kGrid>
void dot_nibble32(const uint8_t* row, int64_t cols, const Q8RowView* xs, int nt, float* y) {
  constexpr int64_t kBytes = 18;
  const int64_t nb = cols / 32;
  const __m512i lut = iq4_lut();
  auto codes = [&](const uint8_t* b0, const uint8_t* b1) {
    const __m512i u = nibbles_of_blocks_at(b0 + 2, b1 + 2);
    return kGrid ? _mm512_shuffle_epi8(lut, u) : u;
  };
  for_nt(nt, y, [&](auto& acc) {
    acc.bias_scale = kGrid ? -128.0f : -8.0f;
    int64_t c = 0;
    for (; c + 2 <= nb / 2; c += 2) {
      const uint8_t* b0 = row + 2 * c * kBytes;
      _mm_prefetch(reinterpret_cast<const char*>(b0) + kPrefetchBytes, _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(b0) + kPrefetchBytes + 64, _MM_HINT_T0);  // 72 bytes a step
      const __m128 d = four_halves(b0, kBytes);
      accumulate_codes(acc, codes(b0, b0 + kBytes), expand_pair_at(d, 0), xs, c);
      accumulate_codes(acc, codes(b0 + 2 * kBytes, b0 + 3 * kBytes), expand_pair_at(d, 2), xs, c + 1);
      accumulate_offsets4(acc, _mm_permute_ps(d, _MM_SHUFFLE(1, 1, 0, 0)), xs, c);
      accumulate_offsets4(acc, _mm_permute_ps(d, _MM_SHUFFLE(3, 3, 2, 2)), xs, c + 1);
    }
    for (; c < nb / 2; ++c) {
      const uint8_t* b0 = row + 2 * c * kBytes;
      const __m128 d = two_halves(b0, b0 + kBytes);
      accumulate_codes(acc, codes(b0, b0 + kBytes), expand_sub2(d), xs, c);
      accumulate_offsets4(acc, _mm_permute_ps(d, _MM_SHUFFLE(1, 1, 0, 0)), xs, c);
    }
  });
  if (nb % 2) {
    dot_tail(*avx512_isa().isa, unpack_of(kGrid ? "iq4_nl" : "q4_0"), row + (nb - 1) * kBytes, (nb - 1) * 32, cols, xs, nt, y);
  }
}

// q8_0: 34-byte blocks of 32; u = q + 128, b = -128d.
void dot_q8_0(const uint8_t* row, int64_t cols, const Q8RowView* xs, int nt, float* y) {
  constexpr int64_t kBytes = 34;
  const int64_t nb = cols / 32;
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  const __m128 offset = _mm_set1_ps(-128.0f);
  for_nt(nt, y, [&](auto& acc) {
    for (int64_t c = 0; c < nb / 2; ++c) {
      const uint8_t* b0 = row + 2 * c * kBytes;
      const uint8_t* b1 = b0 + kBytes;
      _mm_prefetch(reinterpret_cast<const char*>(b0) + kPrefetchBytes, _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(b0) + kPrefetchBytes + 64, _MM_HINT_T0);  // 68 bytes a chunk
      const __m256i v0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b0 + 2));
      const __m256i v1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b1 + 2));
      const __m512i u = _mm512_xor_si512(_mm512_inserti64x4(_mm512_castsi256_si512(v0), v1, 1), flip);
      const __m128 d = two_halves(b0, b1);
      accumulate(acc, u, expand_sub2(d), _mm_mul_ps(_mm_permute_ps(d, _MM_SHUFFLE(1, 1, 0, 0)), offset), xs, c);
    }
  });
  if (nb % 2) dot_tail(*avx512_isa().isa, unpack_of("q8_0"), row + (nb - 1) * kBytes, (nb - 1) * 32, cols, xs, nt, y);
}

// Two floats at p → [p0, p0, p1, p1] and the lane expansion of (p0, p1).
// (_mm_loadl_epi64 reads through a may-alias type: the floats may be read as one 64-bit load.)
__m128 two_floats(const float* p) { return _mm_castsi128_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))); }
__m128 pair_per_sub(const float* p) { return _mm_permute_ps(two_floats(p), _MM_SHUFFLE(1, 1, 0, 0)); }
__m512 pair_per_lane(const float* p) { return expand_sub2(two_floats(p)); }

// q4_k: 144-byte super-blocks of 256; chunk j of a super-block holds sub-blocks 2j, 2j+1
// (32 each): low nibbles of qs[32j..32j+32) then the high nibbles. a = d sc, b = -dmin m.
void dot_q4_k(const uint8_t* row, int64_t cols, const Q8RowView* xs, int nt, float* y) {
  const __m256i mask = _mm256_set1_epi8(0x0F);
  for_nt(nt, y, [&](auto& acc) {
    for (int64_t i = 0; i < cols / 256; ++i) {
      const uint8_t* blk = row + i * sizeof(BlockQ4_K);  // rows may sit at any byte offset
      for (int64_t k = 0; k < static_cast<int64_t>(sizeof(BlockQ4_K)); k += 64) {
        _mm_prefetch(reinterpret_cast<const char*>(blk) + kPrefetchBytes + k, _MM_HINT_T0);
      }
      const float d = _cvtsh_ss(half_at(blk + offsetof(BlockQ4_K, d))), dmin = _cvtsh_ss(half_at(blk + offsetof(BlockQ4_K, dmin)));
      float a8[8], b8[8];
      for (int s = 0; s < 8; ++s) {
        uint8_t sc, m;
        unpack_scale_min_k4(blk + offsetof(BlockQ4_K, scales), s, &sc, &m);
        a8[s] = d * sc;
        b8[s] = -(dmin * m);
      }
      for (int j = 0; j < 4; ++j) {
        const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + offsetof(BlockQ4_K, qs) + 32 * j));
        const __m256i lo = _mm256_and_si256(q, mask), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), mask);
        const __m512i u = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
        accumulate(acc, u, pair_per_lane(a8 + 2 * j), pair_per_sub(b8 + 2 * j), xs, 4 * i + j);
      }
    }
  });
}

// q6_k: 210-byte super-blocks of 256; 16 sub-blocks of 16 with int8 scales; u = 6-bit q,
// a = d sc, b = -32 a. Chunk m: half m/2; even m takes the low nibbles of ql, odd the high.
void dot_q6_k(const uint8_t* row, int64_t cols, const Q8RowView* xs, int nt, float* y) {
  const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(0x03);
  const __m128 offset = _mm_set1_ps(-32.0f);
  for_nt(nt, y, [&](auto& acc) {
    for (int64_t i = 0; i < cols / 256; ++i) {
      const uint8_t* blk = row + i * sizeof(BlockQ6_K);
      for (int64_t k = 0; k < static_cast<int64_t>(sizeof(BlockQ6_K)); k += 64) {
        _mm_prefetch(reinterpret_cast<const char*>(blk) + kPrefetchBytes + k, _MM_HINT_T0);
      }
      alignas(64) float a16[16];
      const __m512 sc = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + offsetof(BlockQ6_K, scales)))));
      _mm512_store_ps(a16, _mm512_mul_ps(_mm512_set1_ps(_cvtsh_ss(half_at(blk + offsetof(BlockQ6_K, d)))), sc));
      for (int half = 0; half < 2; ++half) {
        const __m256i ql0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + offsetof(BlockQ6_K, ql) + 64 * half));
        const __m256i ql1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + offsetof(BlockQ6_K, ql) + 64 * half + 32));
        const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + offsetof(BlockQ6_K, qh) + 32 * half));
        for (int odd = 0; odd < 2; ++odd) {
          const int shift = 4 * odd;
          const __m256i l0 = _mm256_and_si256(_mm256_srli_epi16(ql0, shift), m4);
          const __m256i l1 = _mm256_and_si256(_mm256_srli_epi16(ql1, shift), m4);
          const __m256i h0 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, shift), m2), 4);
          const __m256i h1 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, shift + 2), m2), 4);
          const __m512i u = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_or_si256(l0, h0)), _mm256_or_si256(l1, h1), 1);
          const int m = 2 * half + odd;
          const __m128 a4 = _mm_load_ps(a16 + 4 * m);
          accumulate(acc, u, expand_sub4(a4), _mm_mul_ps(a4, offset), xs, 4 * i + m);
        }
      }
    }
  });
}

// iq4_xs: 136-byte super-blocks of 256 = 8 blocks of 32 on the iq4 grid with 6-bit scales;
// u = grid + 128, a = d (ls - 32), b = -128 a.
void dot_iq4_xs(const uint8_t* row, int64_t cols, const Q8RowView* xs, int nt, float* y) {
  const __m512i lut = iq4_lut();
  const __m128 offset = _mm_set1_ps(-128.0f);
  for_nt(nt, y, [&](auto& acc) {
    for (int64_t i = 0; i < cols / 256; ++i) {
      const uint8_t* blk = row + i * sizeof(BlockIq4Xs);
      for (int64_t k = 0; k < static_cast<int64_t>(sizeof(BlockIq4Xs)); k += 64) {
        _mm_prefetch(reinterpret_cast<const char*>(blk) + kPrefetchBytes + k, _MM_HINT_T0);
      }
      const float d = _cvtsh_ss(half_at(blk + offsetof(BlockIq4Xs, d)));
      const uint16_t scales_h = half_at(blk + offsetof(BlockIq4Xs, scales_h));
      const uint8_t* scales_l = blk + offsetof(BlockIq4Xs, scales_l);
      float dl[8];
      for (int ib = 0; ib < 8; ++ib) {
        const int ls = ((scales_l[ib / 2] >> (4 * (ib % 2))) & 0xF) | (((scales_h >> (2 * ib)) & 3) << 4);
        dl[ib] = d * static_cast<float>(ls - 32);
      }
      for (int m = 0; m < 4; ++m) {
        const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + offsetof(BlockIq4Xs, qs) + 32 * m));
        const __m512i u = _mm512_shuffle_epi8(lut, nibbles_of_two_blocks(v));
        accumulate(acc, u, pair_per_lane(dl + 2 * m), _mm_mul_ps(pair_per_sub(dl + 2 * m), offset), xs, 4 * i + m);
      }
    }
  });
}

constexpr FusedEntry kFused[] = {
    {"q4_0", &dot_nibble32<false>}, {"iq4_nl", &dot_nibble32<true>}, {"q8_0", &dot_q8_0},
    {"q4_k", &dot_q4_k},            {"q6_k", &dot_q6_k},             {"iq4_xs", &dot_iq4_xs},
};

}  // namespace

std::span<const FusedEntry> avx512_fused_kernels() { return kFused; }

}  // namespace lowbit::kernels
