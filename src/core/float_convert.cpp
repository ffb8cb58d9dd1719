// fp32 <-> fp16/bf16/fp8 scalar conversions with round-to-nearest-even, written once as a
// generic "round an fp32 to E exponent bits and M mantissa bits" on the bit pattern.
#include "lowbit/float_convert.h"

#include <array>
#include <bit>
#include <cmath>
#include <cstring>
#include <vector>

#include <immintrin.h>

#include "lowbit/cpu_features.h"

namespace lowbit {
namespace {

struct NarrowFloat {
  int exp_bits;
  int man_bits;
  int bias;
};

constexpr NarrowFloat kFp16{5, 10, 15};
constexpr NarrowFloat kE4M3{4, 3, 7};
constexpr NarrowFloat kE5M2{5, 2, 15};

// x >> shift, rounded to nearest, ties to even.
uint64_t shift_right_rne(uint64_t x, int shift) {
  if (shift <= 0) return x << -shift;
  if (shift > 62) return 0;
  const uint64_t q = x >> shift;
  const uint64_t rem = x & ((uint64_t{1} << shift) - 1);
  const uint64_t half = uint64_t{1} << (shift - 1);
  return (rem > half || (rem == half && (q & 1))) ? q + 1 : q;
}

// Magnitude code (no sign bit) of the finite, non-NaN |f| in format t, rounded to nearest
// even. May exceed the largest finite code; the caller decides overflow behaviour.
uint32_t round_magnitude(uint32_t abs_bits, NarrowFloat t) {
  const int e32 = static_cast<int>(abs_bits >> 23);
  uint64_t mant = abs_bits & 0x7FFFFF;
  int e = e32 - 127;
  if (e32 == 0) {
    e = -126;  // fp32 subnormal: no implicit bit
  } else {
    mant |= 0x800000;
  }
  if (mant == 0) return 0;
  if (e + t.bias >= 1) {
    // Normal in the target: drop 23 - M mantissa bits; a carry moves into the exponent.
    const uint64_t full = (static_cast<uint64_t>(e + t.bias) << 23) | (mant & 0x7FFFFF);
    return static_cast<uint32_t>(shift_right_rne(full, 23 - t.man_bits));
  }
  // Subnormal in the target: units of 2^(1 - bias - M).
  const int shift = (1 - t.bias - e) + (23 - t.man_bits);
  return static_cast<uint32_t>(shift_right_rne(mant, shift));
}

float decode_narrow(uint32_t code, NarrowFloat t, bool has_inf) {
  const uint32_t sign = code >> (t.exp_bits + t.man_bits);
  const uint32_t exp = (code >> t.man_bits) & ((1u << t.exp_bits) - 1);
  const uint32_t man = code & ((1u << t.man_bits) - 1);
  const float s = sign ? -1.0f : 1.0f;
  const uint32_t exp_max = (1u << t.exp_bits) - 1;
  if (has_inf && exp == exp_max) {
    return man == 0 ? s * INFINITY : std::copysign(NAN, s);
  }
  if (exp == 0) return s * std::ldexp(static_cast<float>(man), 1 - t.bias - t.man_bits);
  return s * std::ldexp(static_cast<float>(man | (1u << t.man_bits)),
                        static_cast<int>(exp) - t.bias - t.man_bits);
}

float fp8_e4m3_decode_ref(uint8_t v) {
  if ((v & 0x7F) == 0x7F) return std::copysign(NAN, (v & 0x80) ? -1.0f : 1.0f);
  return decode_narrow(v, kE4M3, false);
}

// Decoding is a table lookup; the tables are filled once from decode_narrow, the reference.
const float* fp16_table() {
  static const std::vector<float> table = [] {
    std::vector<float> t(1 << 16);
    for (uint32_t c = 0; c < t.size(); ++c) t[c] = decode_narrow(c, kFp16, true);
    return t;
  }();
  return table.data();
}

const std::array<float, 256>& e4m3_table() {
  static const std::array<float, 256> table = [] {
    std::array<float, 256> t{};
    for (uint32_t c = 0; c < 256; ++c) t[c] = fp8_e4m3_decode_ref(static_cast<uint8_t>(c));
    return t;
  }();
  return table;
}

const std::array<float, 256>& e5m2_table() {
  static const std::array<float, 256> table = [] {
    std::array<float, 256> t{};
    for (uint32_t c = 0; c < 256; ++c) t[c] = decode_narrow(c, kE5M2, true);
    return t;
  }();
  return table;
}

}  // namespace

float fp16_to_fp32(uint16_t h) {
  static const float* table = fp16_table();
  return table[h];
}

namespace {

void fp16_row_scalar(const uint8_t* in, int64_t n, float* out) {
  const float* table = fp16_table();
  for (int64_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, in + 2 * i, 2);
    out[i] = table[h];
  }
}

// VCVTPH2PS is exact for every finite and infinite value, as the table is.
__attribute__((target("avx2,f16c"))) void fp16_row_f16c(const uint8_t* in, int64_t n, float* out) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + 2 * i));
    _mm256_storeu_ps(out + i, _mm256_cvtph_ps(h));
  }
  fp16_row_scalar(in + 2 * i, n - i, out + i);
}

}  // namespace

void fp16_row_to_fp32(const uint8_t* in, int64_t n, float* out) {
  static const auto convert = cpu_features().avx2 ? &fp16_row_f16c : &fp16_row_scalar;
  convert(in, n, out);
}

uint16_t fp32_to_fp16(float f) {
  const uint32_t u = std::bit_cast<uint32_t>(f);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000);
  const uint32_t a = u & 0x7FFFFFFF;
  if (a > 0x7F800000) return sign | 0x7E00 | static_cast<uint16_t>((a >> 13) & 0x1FF);  // NaN
  if (a == 0x7F800000) return sign | 0x7C00;
  const uint32_t m = round_magnitude(a, kFp16);
  return sign | static_cast<uint16_t>(m >= 0x7C00 ? 0x7C00 : m);
}

float bf16_to_fp32(uint16_t b) { return std::bit_cast<float>(static_cast<uint32_t>(b) << 16); }

uint16_t fp32_to_bf16(float f) {
  const uint32_t u = std::bit_cast<uint32_t>(f);
  if ((u & 0x7FFFFFFF) > 0x7F800000) return static_cast<uint16_t>((u >> 16) | 64);  // quiet NaN
  return static_cast<uint16_t>((u + 0x7FFF + ((u >> 16) & 1)) >> 16);
}

float fp8_e4m3_to_fp32(uint8_t v) { return e4m3_table()[v]; }

uint8_t fp32_to_fp8_e4m3(float f) {
  const uint32_t u = std::bit_cast<uint32_t>(f);
  const uint8_t sign = static_cast<uint8_t>((u >> 24) & 0x80);
  const uint32_t a = u & 0x7FFFFFFF;
  if (a > 0x7F800000) return sign | 0x7F;
  if (a == 0x7F800000) return sign | 0x7E;  // saturate
  const uint32_t m = round_magnitude(a, kE4M3);
  return sign | static_cast<uint8_t>(m > 0x7E ? 0x7E : m);
}

float fp8_e5m2_to_fp32(uint8_t v) { return e5m2_table()[v]; }

uint8_t fp32_to_fp8_e5m2(float f) {
  const uint32_t u = std::bit_cast<uint32_t>(f);
  const uint8_t sign = static_cast<uint8_t>((u >> 24) & 0x80);
  const uint32_t a = u & 0x7FFFFFFF;
  if (a > 0x7F800000) return sign | 0x7E;
  if (a == 0x7F800000) return sign | 0x7C;
  const uint32_t m = round_magnitude(a, kE5M2);
  return sign | static_cast<uint8_t>(m >= 0x7C ? 0x7C : m);
}

float e8m0_to_fp32(uint8_t e) {
  if (e == 0xFF) return NAN;
  return std::ldexp(1.0f, static_cast<int>(e) - 127);
}

}  // namespace lowbit
