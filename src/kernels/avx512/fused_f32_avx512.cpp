// AVX-512 fused kernels of the float path: f32, f16 and bf16 rows read in their file's
// bytes (any alignment), widened to fp32 in registers and dotted with up to 4 fp32
// activation rows. The reference is the format's dequantize followed by dot_f32.
#include <immintrin.h>

#include "kernels/kernel_impl.h"

namespace lowbit::kernels {
namespace {

constexpr int kPrefetchBytes = 4096;

// Sixteen elements from element i (masked to the row's end).
struct LoadF32 {
  static __m512 at(const uint8_t* row, int64_t i, __mmask16 m) { return _mm512_maskz_loadu_ps(m, row + 4 * i); }
  static constexpr int kBytes = 4;
};
struct LoadF16 {
  static __m512 at(const uint8_t* row, int64_t i, __mmask16 m) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, row + 2 * i));
  }
  static constexpr int kBytes = 2;
};
struct LoadBf16 {
  static __m512 at(const uint8_t* row, int64_t i, __mmask16 m) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, row + 2 * i)), 16));
  }
  static constexpr int kBytes = 2;
};

template <typename Load, int NT>
void dot_rows(const uint8_t* row, int64_t cols, const float* x, float* y) {
  __m512 acc[NT], acc2[NT];
  for (int n = 0; n < NT; ++n) acc[n] = acc2[n] = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= cols; i += 32) {
    _mm_prefetch(reinterpret_cast<const char*>(row + Load::kBytes * i) + kPrefetchBytes, _MM_HINT_T0);
    if (Load::kBytes == 4) _mm_prefetch(reinterpret_cast<const char*>(row + Load::kBytes * i) + kPrefetchBytes + 64, _MM_HINT_T0);
    const __m512 w0 = Load::at(row, i, 0xFFFF), w1 = Load::at(row, i + 16, 0xFFFF);
    for (int n = 0; n < NT; ++n) {
      acc[n] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(x + n * cols + i), acc[n]);
      acc2[n] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(x + n * cols + i + 16), acc2[n]);
    }
  }
  for (; i < cols; i += 16) {
    const __mmask16 m = static_cast<__mmask16>(cols - i >= 16 ? 0xFFFF : (1u << (cols - i)) - 1u);
    const __m512 w = Load::at(row, i, m);
    for (int n = 0; n < NT; ++n) acc[n] = _mm512_fmadd_ps(w, _mm512_maskz_loadu_ps(m, x + n * cols + i), acc[n]);
  }
  for (int n = 0; n < NT; ++n) y[n] = _mm512_reduce_add_ps(_mm512_add_ps(acc[n], acc2[n]));
}

template <typename Load>
void dot_f(const uint8_t* row, int64_t cols, const float* x, int nt, float* y) {
  switch (nt) {
    case 1: return dot_rows<Load, 1>(row, cols, x, y);
    case 2: return dot_rows<Load, 2>(row, cols, x, y);
    case 3: return dot_rows<Load, 3>(row, cols, x, y);
    default: return dot_rows<Load, 4>(row, cols, x, y);
  }
}

constexpr FusedF32Entry kFusedF32[] = {
    {"f32", &dot_f<LoadF32>},
    {"f16", &dot_f<LoadF16>},
    {"bf16", &dot_f<LoadBf16>},
};

}  // namespace

std::span<const FusedF32Entry> avx512_fused_f32_kernels() { return kFusedF32; }

}  // namespace lowbit::kernels
