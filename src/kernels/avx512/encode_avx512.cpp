// AVX-512 weight encoders: x (rows, cols) → a format's bytes, byte for byte what the
// format's scalar quantize writes without importance weights (the same float operations,
// mul and add kept apart, one lane per element). The fp16 block scale goes through the
// scalar conversion. Tested against Format::quantize in test_kernels.
#include <immintrin.h>

#include <cstring>

#include "kernels/kernel_impl.h"
#include "lowbit/float_convert.h"

namespace lowbit::kernels {
namespace {

constexpr int kBlock = 32;

// The first element of largest magnitude in a block of 32 (+0 when all are zero), as the
// scalar search that updates on `amax < |x|` finds it.
float signed_absmax(__m512 x0, __m512 x1, float* amax_out) {
  const __m512 a0 = _mm512_abs_ps(x0), a1 = _mm512_abs_ps(x1);
  const float amax = _mm512_reduce_max_ps(_mm512_max_ps(a0, a1));
  *amax_out = amax;
  if (amax == 0.0f) return 0.0f;
  const __m512 m = _mm512_set1_ps(amax);
  const uint32_t hits = static_cast<uint32_t>(_mm512_cmp_ps_mask(a0, m, _CMP_EQ_OQ)) |
                        (static_cast<uint32_t>(_mm512_cmp_ps_mask(a1, m, _CMP_EQ_OQ)) << 16);
  alignas(64) float v[kBlock];
  _mm512_store_ps(v, x0);
  _mm512_store_ps(v + 16, x1);
  return v[__builtin_ctz(hits)];
}

// q4_0: d = max / -8, level = min(15, trunc(x·(1/d) + 8.5)); byte j = level j | level j+16 << 4.
void encode_q4_0(const float* x, int64_t rows, int64_t cols, uint8_t* out) {
  const int64_t blocks = rows * (cols / kBlock);
  const __m512 half = _mm512_set1_ps(8.5f);
  const __m512i fifteen = _mm512_set1_epi32(15);
  for (int64_t ib = 0; ib < blocks; ++ib) {
    const float* xb = x + ib * kBlock;
    uint8_t* o = out + ib * 18;
    const __m512 x0 = _mm512_loadu_ps(xb), x1 = _mm512_loadu_ps(xb + 16);
    float amax;
    const float max = signed_absmax(x0, x1, &amax);
    const float d = max / -8.0f;
    const __m512 id = _mm512_set1_ps(d != 0.0f ? 1.0f / d : 0.0f);
    const __m512i l0 = _mm512_min_epi32(_mm512_cvttps_epi32(_mm512_add_ps(_mm512_mul_ps(x0, id), half)), fifteen);
    const __m512i l1 = _mm512_min_epi32(_mm512_cvttps_epi32(_mm512_add_ps(_mm512_mul_ps(x1, id), half)), fifteen);
    const uint16_t h = fp32_to_fp16(d);
    std::memcpy(o, &h, 2);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(o + 2), _mm512_cvtepi32_epi8(_mm512_or_si512(l0, _mm512_slli_epi32(l1, 4))));
  }
}

// Rounds half away from zero, as std::round: trunc(v), plus sign(v) when |v - trunc(v)| >= 0.5
// (the difference is exact below 2^23).
__m512i round_away(__m512 v) {
  const __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  const __mmask16 up = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_sub_ps(v, t)), _mm512_set1_ps(0.5f), _CMP_GE_OQ);
  const __m512 one = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(_mm512_set1_ps(1.0f)),
                                                         _mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32(INT32_MIN))));
  return _mm512_cvttps_epi32(_mm512_mask_add_ps(t, up, t, one));
}

// q8_0: d = amax / 127, level = round(x·(1/d)).
void encode_q8_0(const float* x, int64_t rows, int64_t cols, uint8_t* out) {
  const int64_t blocks = rows * (cols / kBlock);
  for (int64_t ib = 0; ib < blocks; ++ib) {
    const float* xb = x + ib * kBlock;
    uint8_t* o = out + ib * 34;
    const __m512 x0 = _mm512_loadu_ps(xb), x1 = _mm512_loadu_ps(xb + 16);
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(x0), _mm512_abs_ps(x1)));
    const float d = amax / 127;
    const __m512 id = _mm512_set1_ps(d != 0.0f ? 1.0f / d : 0.0f);
    const uint16_t h = fp32_to_fp16(d);
    std::memcpy(o, &h, 2);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(o + 2), _mm512_cvtepi32_epi8(round_away(_mm512_mul_ps(x0, id))));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(o + 18), _mm512_cvtepi32_epi8(round_away(_mm512_mul_ps(x1, id))));
  }
}

constexpr EncodeEntry kEncoders[] = {
    {"q4_0", &encode_q4_0},
    {"q8_0", &encode_q8_0},
};

}  // namespace

std::span<const EncodeEntry> avx512_encoders() { return kEncoders; }

}  // namespace lowbit::kernels
