// q8_0 repacked for AVX-512 VNNI: 16 rows per group, per block of 32 columns
//   32 bytes: the 16 rows' fp16 scales;
//   512 bytes: eight vectors V_j, lane r = codes 4j..4j+3 of row r's block.
// Codes are signed; the kernel flips their top bit (u = q + 128) for VPDPBUSD and takes the
// offset back through the activation sums. See repack_nibble32_avx512.cpp.
#include <immintrin.h>

#include <cstring>

#include "kernels/avx512/repack_common.h"
#include "kernels/kernel_impl.h"

namespace lowbit::kernels {
namespace {

using namespace avx512;

constexpr int64_t kBlockBytes = 34, kPacked = 32 + 512;

// Rows past the end keep the fill byte 0x80, which the kernel's flip turns into code 0.
void repack(const uint8_t* data, int64_t rows, int64_t cols, uint8_t* out) {
  repack_rows<32, kBlockBytes, kPacked>(data, rows, cols, out, 0x80, [](uint8_t* dst, const uint8_t* blk, int r) {
    if (r == 0) std::memset(dst, 0, 32);  // the scales of missing rows are 0
    std::memcpy(dst + 2 * r, blk, 2);
    for (int j = 0; j < 8; ++j) std::memcpy(dst + 32 + 64 * j + 4 * r, blk + 2 + 4 * j, 4);
  });
}


template <int NT>
void dot_group(const uint8_t* packed, int64_t group, int64_t cols, const Q8RowView* xs, float* y) {
  const int64_t nb = cols / 32;
  const uint8_t* p = packed + group * nb * kPacked;
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  __m512 acc[NT], bias[NT];
  for (int n = 0; n < NT; ++n) acc[n] = bias[n] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b, p += kPacked) {
    prefetch_ahead<(kPacked + 63) / 64 * 64>(p);
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
  with_nt(nt, [&](auto n) { dot_group<decltype(n)::value>(packed, group, cols, xs, y); });
}

}  // namespace

extern const RepackKernels kRepackQ8_0{"q8_0", &packed_bytes<32, kPacked>, &repack, &dot};

}  // namespace lowbit::kernels
