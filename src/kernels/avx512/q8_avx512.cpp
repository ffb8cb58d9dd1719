// AVX-512 (F/BW/DQ/VL + VNNI) versions of the format-independent kernels: activation
// quantization, the u8 x q8 dot of an unpacked row, and the fp32 dot. Compiled with the
// AVX-512 flags; chosen only when the CPU reports them (cpu_features).
#include <immintrin.h>

#include <omp.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/avx512/q8_accumulate.h"
#include "kernels/avx512/repack_common.h"
#include "kernels/kernel_impl.h"
#include "lowbit/cpu_features.h"

namespace lowbit::kernels {
namespace {

using namespace avx512;

// Same arithmetic as quantize_q8_ref: x * (127 / absmax) rounded to nearest even.
void quantize_q8_avx512(const float* x, int64_t cols, int8_t* q, float* d_lane, float* sum) {
  const int64_t padded = q8_padded(cols);
  for (int64_t s = 0; s < padded / kQ8Sub; ++s) {
    const int64_t i0 = s * kQ8Sub;
    const int64_t n = std::max<int64_t>(0, std::min(kQ8Sub, cols - i0));
    const __mmask16 m = static_cast<__mmask16>((1u << n) - 1u);
    const __m512 v = _mm512_maskz_loadu_ps(m, x + i0);
    const float amax = _mm512_reduce_max_ps(_mm512_abs_ps(v));
    const float d = amax / 127.0f, id = amax > 0 ? 127.0f / amax : 0.0f;
    __m512i qi = _mm512_cvtps_epi32(_mm512_mul_ps(v, _mm512_set1_ps(id)));
    qi = _mm512_max_epi32(_mm512_min_epi32(qi, _mm512_set1_epi32(127)), _mm512_set1_epi32(-127));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + i0), _mm512_cvtepi32_epi8(qi));
    _mm_storeu_ps(d_lane + 4 * s, _mm_set1_ps(d));
    sum[s] = d * static_cast<float>(_mm512_reduce_add_epi32(qi));
  }
}

void dot_u8_q8_avx512(U8RowView w, int64_t padded, const Q8RowView* xs, int nt, float* y) {
  for_nt(nt, y, [&](auto& acc) {
    for (int64_t c = 0; c < padded / kQ8Chunk; ++c) {
      const __m512i u = _mm512_loadu_si512(w.u + 64 * c);
      accumulate(acc, u, expand_sub4(_mm_loadu_ps(w.a + 4 * c)), _mm_loadu_ps(w.b + 4 * c), xs, c);
    }
  });
}

float dot_f32_avx512(const float* a, const float* b, int64_t n) {
  __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    for (int k = 0; k < 4; ++k) acc[k] = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16 * k), _mm512_loadu_ps(b + i + 16 * k), acc[k]);
  }
  for (; i < n; i += 16) {
    const __mmask16 m = static_cast<__mmask16>(n - i >= 16 ? 0xFFFF : (1u << (n - i)) - 1u);
    acc[0] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), acc[0]);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
}

// One lane per weight row: per sub-block, four VPDPBUSD (each: 4 codes of all 16 rows
// against one broadcast group of 4 activation codes) give the rows' exact int sums; then
// one conversion and the scales. Templated on the token count so the accumulators stay in
// registers.

template <int NT>
void gemm_panel16_nt(const Panel16View& w, int64_t padded, const Q8RowView* xs, float* y) {
  __m512 acc[NT], bias[NT];
  for (int n = 0; n < NT; ++n) acc[n] = bias[n] = _mm512_setzero_ps();
  for (int64_t s = 0; s < padded / kQ8Sub; ++s) {
    const uint8_t* us = w.u + s * 4 * 64;
    const __m512i u0 = _mm512_loadu_si512(us), u1 = _mm512_loadu_si512(us + 64);
    const __m512i u2 = _mm512_loadu_si512(us + 128), u3 = _mm512_loadu_si512(us + 192);
    const __m512 a = _mm512_loadu_ps(w.a + s * 16), b = _mm512_loadu_ps(w.b + s * 16);
    for (int n = 0; n < NT; ++n) {
      const Group4* g = reinterpret_cast<const Group4*>(xs[n].q + 16 * s);  // broadcast straight from memory
      __m512i isum = _mm512_dpbusd_epi32(_mm512_setzero_si512(), u0, _mm512_set1_epi32(g[0]));
      isum = _mm512_dpbusd_epi32(isum, u1, _mm512_set1_epi32(g[1]));
      isum = _mm512_dpbusd_epi32(isum, u2, _mm512_set1_epi32(g[2]));
      isum = _mm512_dpbusd_epi32(isum, u3, _mm512_set1_epi32(g[3]));
      const __m512 scale = _mm512_mul_ps(a, _mm512_set1_ps(xs[n].d_lane[4 * s]));
      acc[n] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), scale, acc[n]);
      bias[n] = _mm512_fmadd_ps(b, _mm512_set1_ps(xs[n].sum[s]), bias[n]);
    }
  }
  for (int n = 0; n < NT; ++n) _mm512_storeu_ps(y + 16 * n, _mm512_add_ps(acc[n], bias[n]));
}

void gemm_panel16_avx512(const Panel16View& w, int64_t padded, const Q8RowView* xs, int nt, float* y) {
  with_nt(nt, [&](auto n) { gemm_panel16_nt<decltype(n)::value>(w, padded, xs, y); });
}

// 12 independent VPDPBUSD chains per thread (enough to cover its latency), 64 MACs each.
double int8_peak_avx512() {
  constexpr int64_t kIters = int64_t{1} << 24;
  constexpr int kChains = 12;
  const auto t0 = std::chrono::steady_clock::now();
  int threads = 1;
  int64_t checksum = 0;
#pragma omp parallel reduction(+ : checksum)
  {
#pragma omp single
    threads = omp_get_num_threads();
    __m512i acc[kChains];
    for (int k = 0; k < kChains; ++k) acc[k] = _mm512_set1_epi32(k);
    const __m512i a = _mm512_set1_epi8(1), b = _mm512_set1_epi8(static_cast<char>(omp_get_thread_num() + 1));
    for (int64_t i = 0; i < kIters; ++i) {
      for (int k = 0; k < kChains; ++k) acc[k] = _mm512_dpbusd_epi32(acc[k], a, b);
      __asm__ volatile("" : "+v"(acc[0]), "+v"(acc[1]), "+v"(acc[2]), "+v"(acc[3]));  // keep the loop
    }
    for (int k = 0; k < kChains; ++k) checksum += _mm512_reduce_add_epi32(acc[k]);
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  __asm__ volatile("" : : "r"(checksum));  // the sums are used
  return 2.0 * 64.0 * kChains * static_cast<double>(kIters) * threads / s / 1e9;
}

}  // namespace

// Constant data (no code runs to make it): read on any CPU by avx512_isa().
constexpr IsaKernels kAvx512Kernels{"avx512", &quantize_q8_avx512, &dot_u8_q8_avx512, &dot_f32_avx512, &gemm_panel16_avx512, &int8_peak_avx512, &swiglu_avx512, &softmax_avx512, &dot_rows_avx512, &weighted_sum_avx512, &rope_avx512, &w8a8_tile_avx512};

std::span<const RepackKernels> int_affine_repacks();  // repack_int_groups_avx512.cpp
extern const RepackKernels kRepackTq1_0, kRepackTq2_0, kRepackMxfp4, kRepackQ2_K, kRepackQ3_K, kRepackQ4_0, kRepackIq4Nl,
    kRepackQ4_1, kRepackQ5_0, kRepackQ5_1, kRepackQ8_0, kRepackQ4_K, kRepackQ5_K, kRepackQ6_K, kRepackIq4Xs;

// The repacked layouts (repack_*_avx512.cpp), as one table. AVX-512 code (the compiler
// vectorises the copies): called only on CPUs that run it (isa_entries.cpp).
std::span<const RepackKernels> avx512_repacks() {
  static const std::vector<RepackKernels> table = [] {
    std::vector<RepackKernels> t = {kRepackTq1_0, kRepackTq2_0, kRepackMxfp4, kRepackQ2_K, kRepackQ3_K, kRepackQ4_0, kRepackIq4Nl,
                                    kRepackQ4_1, kRepackQ5_0, kRepackQ5_1, kRepackQ8_0, kRepackQ4_K, kRepackQ5_K, kRepackQ6_K,
                                    kRepackIq4Xs};
    for (const RepackKernels& k : int_affine_repacks()) t.push_back(k);
    return t;
  }();
  return table;
}

}  // namespace lowbit::kernels
