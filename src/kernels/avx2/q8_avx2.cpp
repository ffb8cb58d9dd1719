// AVX2 (+FMA, F16C) versions of the format-independent kernels, for CPUs without AVX-512:
// activation quantization, the u8 x q8 dot (codes widened to 16 bits, VPMADDWD: u up to
// 255 would saturate VPMADDUBSW) and the fp32 dot. No fused kernels: rows are unpacked by
// the scalar unpackers first.
#include <immintrin.h>

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "kernels/kernel_impl.h"
#include "lowbit/cpu_features.h"

namespace lowbit::kernels {
namespace {

float hsum(__m256 v) {
  const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  return _mm_cvtss_f32(_mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1)));
}

float hmax(__m256 v) {
  const __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 m2 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
  return _mm_cvtss_f32(_mm_max_ss(m2, _mm_shuffle_ps(m2, m2, 1)));
}

__m256i tail_mask(int64_t n) {  // lanes [0, n) set, n in 0..8
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// Same arithmetic as quantize_q8_ref.
void quantize_q8_avx2(const float* x, int64_t cols, int8_t* q, float* d_lane, float* sum) {
  const int64_t padded = q8_padded(cols);
  const __m256 sign = _mm256_set1_ps(-0.0f);
  for (int64_t s = 0; s < padded / kQ8Sub; ++s) {
    const int64_t i0 = s * kQ8Sub, n = std::max<int64_t>(0, std::min(kQ8Sub, cols - i0));
    const __m256 v0 = _mm256_maskload_ps(x + i0, tail_mask(std::min<int64_t>(n, 8)));
    const __m256 v1 = _mm256_maskload_ps(x + i0 + 8, tail_mask(std::max<int64_t>(n - 8, 0)));
    const float amax = hmax(_mm256_max_ps(_mm256_andnot_ps(sign, v0), _mm256_andnot_ps(sign, v1)));
    const float d = amax / 127.0f, id = amax > 0 ? 127.0f / amax : 0.0f;
    const __m256i lim = _mm256_set1_epi32(127), nlim = _mm256_set1_epi32(-127);
    const __m256i q0 = _mm256_max_epi32(_mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(v0, _mm256_set1_ps(id))), lim), nlim);
    const __m256i q1 = _mm256_max_epi32(_mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(v1, _mm256_set1_ps(id))), lim), nlim);
    const __m256i w16 = _mm256_permute4x64_epi64(_mm256_packs_epi32(q0, q1), 0xD8);  // 16 x int16 in order
    const __m128i b8 = _mm_packs_epi16(_mm256_castsi256_si128(w16), _mm256_extracti128_si256(w16, 1));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + i0), b8);
    const __m256i s8 = _mm256_add_epi32(q0, q1);
    const __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s8), _mm256_extracti128_si256(s8, 1));
    const __m128i s2 = _mm_add_epi32(s4, _mm_unpackhi_epi64(s4, s4));
    const int isum = _mm_cvtsi128_si32(_mm_add_epi32(s2, _mm_shuffle_epi32(s2, 1)));
    _mm_storeu_ps(d_lane + 4 * s, _mm_set1_ps(d));
    sum[s] = d * static_cast<float>(isum);
  }
}

void dot_u8_q8_avx2(U8RowView w, int64_t padded, const Q8RowView* xs, int nt, float* y) {
  for (int n = 0; n < nt; ++n) {
    __m256 acc = _mm256_setzero_ps();
    float bias = 0;
    for (int64_t s = 0; s < padded / kQ8Sub; ++s) {
      const __m256i u = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w.u + 16 * s)));
      const __m256i q = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(xs[n].q + 16 * s)));
      const __m256 isum = _mm256_cvtepi32_ps(_mm256_madd_epi16(u, q));
      acc = _mm256_fmadd_ps(isum, _mm256_set1_ps(w.a[s] * xs[n].d_lane[4 * s]), acc);
      bias += w.b[s] * xs[n].sum[s];
    }
    y[n] = hsum(acc) + bias;
  }
}

float dot_f32_avx2(const float* a, const float* b, int64_t n) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
  }
  float s = hsum(_mm256_add_ps(acc0, acc1));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

// 12 independent VPMADDWD chains per thread, 16 MACs each (the instruction dot_u8_q8_avx2
// uses; each result feeds the next, so nothing is hoisted).
double int8_peak_avx2() {
  constexpr int64_t kIters = int64_t{1} << 24;
  constexpr int kChains = 12;
  const auto t0 = std::chrono::steady_clock::now();
  int threads = 1;
  int64_t checksum = 0;
#pragma omp parallel reduction(+ : checksum)
  {
#pragma omp single
    threads = omp_get_num_threads();
    __m256i acc[kChains];
    for (int k = 0; k < kChains; ++k) acc[k] = _mm256_set1_epi32(k);
    const __m256i b = _mm256_set1_epi16(static_cast<int16_t>(omp_get_thread_num() + 1));
    for (int64_t i = 0; i < kIters; ++i) {
      for (int k = 0; k < kChains; ++k) acc[k] = _mm256_madd_epi16(acc[k], b);
      __asm__ volatile("" : "+x"(acc[0]), "+x"(acc[1]), "+x"(acc[2]), "+x"(acc[3]));
    }
    for (int k = 0; k < kChains; ++k) {
      alignas(32) int32_t v[8];
      _mm256_store_si256(reinterpret_cast<__m256i*>(v), acc[k]);
      for (int32_t x : v) checksum += x;
    }
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  __asm__ volatile("" : : "r"(checksum));  // the sums are used
  return 2.0 * 16.0 * kChains * static_cast<double>(kIters) * threads / s / 1e9;
}

constexpr IsaKernels kAvx2{"avx2", &quantize_q8_avx2, &dot_u8_q8_avx2, &dot_f32_avx2, nullptr, &int8_peak_avx2, &swiglu_ref, &softmax_ref, &dot_rows_ref, &weighted_sum_ref, &rope_ref};

}  // namespace

const IsaEntry& avx2_isa() {
  static const IsaEntry entry{&kAvx2, {}, {}, {}, {}, [] { return cpu_features().avx2; }};
  return entry;
}

}  // namespace lowbit::kernels
