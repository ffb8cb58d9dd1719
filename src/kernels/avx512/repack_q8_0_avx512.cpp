// q8_0 repacked for AVX-512 VNNI: 16 rows per group, per block of 32 columns
//   32 bytes: the 16 rows' fp16 scales;
//   512 bytes: eight vectors V_j, lane r = codes 4j..4j+3 of row r's block.
// Codes are signed; the kernel flips their top bit (u = q + 128) for VPDPBUSD and takes the
// offset back through the activation sums. See repack_nibble32_avx512.cpp.
#include <immintrin.h>

#include <cstring>

#include "kernels/kernel_impl.h"

namespace lowbit::kernels {
namespace {

constexpr int64_t kGroup = 16, kBlockBytes = 34, kPacked = 32 + 512;
constexpr int kPrefetchBytes = 8192;

uint64_t packed_bytes(int64_t rows, int64_t cols) {
  return static_cast<uint64_t>((rows + kGroup - 1) / kGroup) * static_cast<uint64_t>(cols / 32) * kPacked;
}

void repack(const uint8_t* data, int64_t rows, int64_t cols, uint8_t* out) {
  const int64_t nb = cols / 32, groups = (rows + kGroup - 1) / kGroup;
#pragma omp parallel for schedule(static) if (rows * cols >= (1 << 20))
  for (int64_t g = 0; g < groups; ++g) {
    for (int64_t b = 0; b < nb; ++b) {
      uint8_t* dst = out + (g * nb + b) * kPacked;
      std::memset(dst, 0, 32);
      std::memset(dst + 32, 0x80, 512);  // padding rows: stored 0x80, so the flipped code is 0
      for (int64_t r = 0; r < kGroup && g * kGroup + r < rows; ++r) {
        const uint8_t* blk = data + ((g * kGroup + r) * nb + b) * kBlockBytes;
        std::memcpy(dst + 2 * r, blk, 2);
        for (int j = 0; j < 8; ++j) std::memcpy(dst + 32 + 64 * j + 4 * r, blk + 2 + 4 * j, 4);
      }
    }
  }
}

typedef int32_t Group4 __attribute__((may_alias, aligned(1)));

template <int NT>
void dot_group(const uint8_t* packed, int64_t group, int64_t cols, const Q8RowView* xs, float* y) {
  const int64_t nb = cols / 32;
  const uint8_t* p = packed + group * nb * kPacked;
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  __m512 acc[NT], bias[NT];
  for (int n = 0; n < NT; ++n) acc[n] = bias[n] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b, p += kPacked) {
    for (int k = 0; k < kPacked; k += 64) _mm_prefetch(reinterpret_cast<const char*>(p) + kPrefetchBytes + k, _MM_HINT_T0);
    const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    __m512i u[8];
    for (int j = 0; j < 8; ++j) u[j] = _mm512_xor_si512(_mm512_loadu_si512(p + 32 + 64 * j), flip);
    for (int n = 0; n < NT; ++n) {
      const Group4* g = reinterpret_cast<const Group4*>(xs[n].q + 32 * b);
      __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
      for (int j = 0; j < 4; ++j) {
        s0 = _mm512_dpbusd_epi32(s0, u[j], _mm512_set1_epi32(g[j]));
        s1 = _mm512_dpbusd_epi32(s1, u[4 + j], _mm512_set1_epi32(g[4 + j]));
      }
      const float* dl = xs[n].d_lane + 8 * b;
      acc[n] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s0), _mm512_mul_ps(d, _mm512_set1_ps(dl[0])), acc[n]);
      acc[n] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s1), _mm512_mul_ps(d, _mm512_set1_ps(dl[4])), acc[n]);
      bias[n] = _mm512_fmadd_ps(d, _mm512_set1_ps(xs[n].sum[2 * b] + xs[n].sum[2 * b + 1]), bias[n]);
    }
  }
  const __m512 offset = _mm512_set1_ps(-128.0f);
  for (int n = 0; n < NT; ++n) _mm512_storeu_ps(y + 16 * n, _mm512_fmadd_ps(bias[n], offset, acc[n]));
}

void dot(const uint8_t* packed, int64_t group, int64_t cols, const Q8RowView* xs, int nt, float* y) {
  switch (nt) {
    case 1: return dot_group<1>(packed, group, cols, xs, y);
    case 2: return dot_group<2>(packed, group, cols, xs, y);
    case 3: return dot_group<3>(packed, group, cols, xs, y);
    default: return dot_group<4>(packed, group, cols, xs, y);
  }
}

}  // namespace

extern const RepackKernels kRepackQ8_0{"q8_0", &packed_bytes, &repack, &dot};

}  // namespace lowbit::kernels
