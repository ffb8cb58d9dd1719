// AVX-512 fused kernels of the float path: f32, f16, bf16, fp8 (e4m3, e5m2), nf4 and fp4
// rows read in their file's bytes (any alignment), widened to fp32 in registers and dotted
// with up to 4 fp32 activation rows. The reference is the format's dequantize followed by
// dot_f32.
#include <immintrin.h>

#include <cstring>

#include "formats/nf4_fp4_codes.h"
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

// fp8 through fp16: an E5M2 byte is the top byte of the same fp16; an E4M3 byte's
// magnitude shifted into fp16's exponent and mantissa fields reads as its value times 2^-8
// (the exponent biases differ by 8; E4M3's subnormals land on fp16 subnormals, so this is
// exact for every finite code), and the row's kernel multiplies the 2^8 back.
struct LoadFp8E5M2 {
  static __m512 at(const uint8_t* row, int64_t i, __mmask16 m) {
    return _mm512_cvtph_ps(_mm256_slli_epi16(_mm256_cvtepu8_epi16(_mm_maskz_loadu_epi8(m, row + i)), 8));
  }
  static constexpr int kBytes = 1;
  static constexpr float kFactor = 1.0f;
};
struct LoadFp8E4M3 {
  static __m512 at(const uint8_t* row, int64_t i, __mmask16 m) {
    const __m256i b = _mm256_cvtepu8_epi16(_mm_maskz_loadu_epi8(m, row + i));
    const __m256i magnitude = _mm256_slli_epi16(_mm256_and_si256(b, _mm256_set1_epi16(0x7F)), 7);
    const __m256i sign = _mm256_slli_epi16(_mm256_and_si256(b, _mm256_set1_epi16(0x80)), 8);
    return _mm512_cvtph_ps(_mm256_or_si256(magnitude, sign));
  }
  static constexpr int kBytes = 1;
  static constexpr float kFactor = 256.0f;
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
  with_nt(nt, [&](auto n) { dot_rows<Load, decltype(n)::value>(row, cols, x, y); });
}

// fp8 rows: an fp32 scale, then one byte per element.
template <typename Load>
void dot_fp8(const uint8_t* row, int64_t cols, const float* x, int nt, float* y) {
  float scale;
  std::memcpy(&scale, row, 4);
  with_nt(nt, [&](auto n) { dot_rows<Load, decltype(n)::value>(row + 4, cols, x, y); });
  for (int n = 0; n < nt; ++n) y[n] *= scale * Load::kFactor;
}

// bitsandbytes nf4/fp4 (row-local blocks of 64: f32 absmax, 32 code bytes, element 2j in
// the high nibble of byte j). Sixteen code bytes widened to 32-bit lanes give the 16 even
// elements (the high nibbles, shifted down) and the 16 odd ones (VPERMPS reads only an
// index's low 4 bits, so the byte itself indexes its low nibble) through the 16-entry
// table in a register: two shuffles per 16 weights fewer than widening each nibble in
// order. The activations are therefore read in the order arrange_bnb4 gives them: per 32
// elements the even ones, then the odd ones. A block's four products are summed before one
// FMA with its absmax, so no chain of dependent FMAs limits the rate.
template <const float* Code, int NT>
void dot_bnb4_rows(const uint8_t* row, int64_t cols, const float* x, float* y) {
  constexpr int64_t kBytes = 36;
  const __m512 code = _mm512_loadu_ps(Code);
  __m512 acc[NT];
  for (int n = 0; n < NT; ++n) acc[n] = _mm512_setzero_ps();
  for (int64_t b = 0; b < cols / 64; ++b) {
    const uint8_t* blk = row + b * kBytes;
    _mm_prefetch(reinterpret_cast<const char*>(blk) + kPrefetchBytes, _MM_HINT_T0);
    float absmax;
    std::memcpy(&absmax, blk, 4);
    __m512 w[4];  // even and odd elements of the block's first 32, then of its second 32
    for (int h = 0; h < 2; ++h) {
      const __m512i bytes = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 4 + 16 * h)));
      w[2 * h] = _mm512_permutexvar_ps(_mm512_srli_epi32(bytes, 4), code);
      w[2 * h + 1] = _mm512_permutexvar_ps(bytes, code);
    }
    const __m512 scale = _mm512_set1_ps(absmax);
    for (int n = 0; n < NT; ++n) {
      const float* xb = x + n * cols + 64 * b;
      const __m512 s01 = _mm512_fmadd_ps(w[1], _mm512_loadu_ps(xb + 16), _mm512_mul_ps(w[0], _mm512_loadu_ps(xb)));
      const __m512 s23 = _mm512_fmadd_ps(w[3], _mm512_loadu_ps(xb + 48), _mm512_mul_ps(w[2], _mm512_loadu_ps(xb + 32)));
      acc[n] = _mm512_fmadd_ps(_mm512_add_ps(s01, s23), scale, acc[n]);
    }
  }
  for (int n = 0; n < NT; ++n) y[n] = _mm512_reduce_add_ps(acc[n]);
}

// x: (cols) -> out: per 32 elements, the 16 even ones, then the 16 odd ones (cols % 64 == 0
// for these formats).
void arrange_bnb4(const float* x, int64_t cols, float* out) {
  for (int64_t c = 0; c < cols; c += 32) {
    for (int k = 0; k < 16; ++k) {
      out[c + k] = x[c + 2 * k];
      out[c + 16 + k] = x[c + 2 * k + 1];
    }
  }
}

template <const float* Code>
void dot_bnb4(const uint8_t* row, int64_t cols, const float* x, int nt, float* y) {
  with_nt(nt, [&](auto n) { dot_bnb4_rows<Code, decltype(n)::value>(row, cols, x, y); });
}

constexpr FusedF32Entry kFusedF32[] = {
    {"f32", &dot_f<LoadF32>},
    {"f16", &dot_f<LoadF16>},
    {"bf16", &dot_f<LoadBf16>},
    {"fp8_e4m3", &dot_fp8<LoadFp8E4M3>},
    {"fp8_e5m2", &dot_fp8<LoadFp8E5M2>},
    {"nf4", &dot_bnb4<lowbit::formats::kNf4Code>, &arrange_bnb4},
    {"fp4", &dot_bnb4<lowbit::formats::kBnbFp4Code>, &arrange_bnb4},
};

}  // namespace

std::span<const FusedF32Entry> avx512_fused_f32_kernels() { return kFusedF32; }

}  // namespace lowbit::kernels
