// Exhaustive tests of the fp16 / bf16 / fp8 conversions: every code decodes and re-encodes
// to itself, every midpoint between neighbours rounds to the even code, values just
// either side round to the nearer one, and overflow follows each format's rule.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <functional>

#include "lowbit/float_convert.h"

namespace lowbit {
namespace {

struct Codec {
  const char* name;
  int bits;                                  // 16 or 8
  std::function<float(uint32_t)> decode;
  std::function<uint32_t(float)> encode;
};

std::vector<Codec> codecs() {
  return {
      {"fp16", 16, [](uint32_t c) { return fp16_to_fp32(static_cast<uint16_t>(c)); },
       [](float f) { return static_cast<uint32_t>(fp32_to_fp16(f)); }},
      {"bf16", 16, [](uint32_t c) { return bf16_to_fp32(static_cast<uint16_t>(c)); },
       [](float f) { return static_cast<uint32_t>(fp32_to_bf16(f)); }},
      {"e4m3", 8, [](uint32_t c) { return fp8_e4m3_to_fp32(static_cast<uint8_t>(c)); },
       [](float f) { return static_cast<uint32_t>(fp32_to_fp8_e4m3(f)); }},
      {"e5m2", 8, [](uint32_t c) { return fp8_e5m2_to_fp32(static_cast<uint8_t>(c)); },
       [](float f) { return static_cast<uint32_t>(fp32_to_fp8_e5m2(f)); }},
  };
}

TEST(FloatConvert, EveryCodeRoundTrips) {
  for (const auto& c : codecs()) {
    for (uint32_t code = 0; code < (1u << c.bits); ++code) {
      const float v = c.decode(code);
      if (std::isnan(v)) {
        EXPECT_TRUE(std::isnan(c.decode(c.encode(v)))) << c.name << " code " << code;
        continue;
      }
      EXPECT_EQ(c.encode(v), code) << c.name << " code " << code << " value " << v;
    }
  }
}

// Positive finite codes in increasing order, so neighbours are adjacent values.
std::vector<uint32_t> positive_finite_codes(const Codec& c) {
  std::vector<uint32_t> codes;
  const uint32_t sign_bit = 1u << (c.bits - 1);
  for (uint32_t code = 0; code < sign_bit; ++code) {
    if (std::isfinite(c.decode(code))) codes.push_back(code);
  }
  return codes;
}

TEST(FloatConvert, MidpointsRoundToEvenAndNeighboursToNearest) {
  for (const auto& c : codecs()) {
    const auto codes = positive_finite_codes(c);
    for (size_t i = 0; i + 1 < codes.size(); ++i) {
      const float lo = c.decode(codes[i]), hi = c.decode(codes[i + 1]);
      ASSERT_LT(lo, hi) << c.name;
      const float mid = static_cast<float>((static_cast<double>(lo) + hi) / 2);
      ASSERT_EQ(static_cast<double>(mid), (static_cast<double>(lo) + hi) / 2) << "midpoint not exact";
      const uint32_t even = (codes[i] % 2 == 0) ? codes[i] : codes[i + 1];
      EXPECT_EQ(c.encode(mid), even) << c.name << " between " << lo << " and " << hi;
      EXPECT_EQ(c.encode(std::nextafter(mid, 0.0f)), codes[i]) << c.name << " below mid " << mid;
      EXPECT_EQ(c.encode(std::nextafter(mid, INFINITY)), codes[i + 1]) << c.name << " above " << mid;
      EXPECT_EQ(c.encode(-mid), even | (1u << (c.bits - 1))) << c.name << " negative mid";
    }
  }
}

TEST(FloatConvert, Fp16Overflow) {
  EXPECT_EQ(fp32_to_fp16(65504.0f), 0x7BFF);
  EXPECT_EQ(fp32_to_fp16(std::nextafter(65520.0f, 0.0f)), 0x7BFF);
  EXPECT_EQ(fp32_to_fp16(65520.0f), 0x7C00);  // the midpoint to 2^16 rounds to inf
  EXPECT_EQ(fp32_to_fp16(1e30f), 0x7C00);
  EXPECT_EQ(fp32_to_fp16(-INFINITY), 0xFC00);
  EXPECT_EQ(fp32_to_fp16(5.9604645e-08f), 0x0001);  // smallest subnormal
  EXPECT_EQ(fp32_to_fp16(2.9802322e-08f), 0x0000);  // half of it: tie to even (0)
  EXPECT_TRUE(std::isnan(fp16_to_fp32(fp32_to_fp16(NAN))));
}

TEST(FloatConvert, Bf16Specials) {
  EXPECT_EQ(fp32_to_bf16(1.0f), 0x3F80);
  EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x3F808000u)), 0x3F80);  // tie -> even
  EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x3F818000u)), 0x3F82);  // tie -> even (up)
  EXPECT_EQ(fp32_to_bf16(3.4e38f), 0x7F80);  // rounds past the largest finite to inf
  EXPECT_TRUE(std::isnan(bf16_to_fp32(fp32_to_bf16(NAN))));
}

TEST(FloatConvert, E4M3SaturatesAndHasNoInfinity) {
  EXPECT_EQ(fp8_e4m3_to_fp32(0x7E), 448.0f);
  EXPECT_TRUE(std::isnan(fp8_e4m3_to_fp32(0x7F)));
  EXPECT_TRUE(std::isnan(fp8_e4m3_to_fp32(0xFF)));
  EXPECT_EQ(fp8_e4m3_to_fp32(0x01), std::ldexp(1.0f, -9));  // smallest subnormal
  EXPECT_EQ(fp32_to_fp8_e4m3(464.0f), 0x7E);  // above max: saturate, never NaN
  EXPECT_EQ(fp32_to_fp8_e4m3(1e9f), 0x7E);
  EXPECT_EQ(fp32_to_fp8_e4m3(INFINITY), 0x7E);
  EXPECT_EQ(fp32_to_fp8_e4m3(-INFINITY), 0xFE);
  EXPECT_EQ(fp32_to_fp8_e4m3(NAN) & 0x7F, 0x7F);
  for (uint32_t c = 0; c < 256; ++c) {
    EXPECT_FALSE(std::isinf(fp8_e4m3_to_fp32(static_cast<uint8_t>(c)))) << c;
  }
}

TEST(FloatConvert, E5M2IsIeeeLike) {
  EXPECT_EQ(fp8_e5m2_to_fp32(0x7B), 57344.0f);
  EXPECT_TRUE(std::isinf(fp8_e5m2_to_fp32(0x7C)));
  EXPECT_TRUE(std::isnan(fp8_e5m2_to_fp32(0x7D)));
  EXPECT_EQ(fp8_e5m2_to_fp32(0x01), std::ldexp(1.0f, -16));
  EXPECT_EQ(fp32_to_fp8_e5m2(61440.0f), 0x7C);  // midpoint to 2^16 -> inf (even)
  EXPECT_EQ(fp32_to_fp8_e5m2(std::nextafter(61440.0f, 0.0f)), 0x7B);
  EXPECT_EQ(fp32_to_fp8_e5m2(-1e9f), 0xFC);
}

TEST(FloatConvert, MatchesCompilerHalfConversion) {
#if defined(__FLT16_MAX__)
  // An independent oracle: the compiler's _Float16 conversion (IEEE round-to-nearest-even),
  // over a sweep of fp32 bit patterns covering every exponent.
  for (uint64_t u = 0; u < (1ull << 32); u += 4099) {
    const float f = std::bit_cast<float>(static_cast<uint32_t>(u));
    if (std::isnan(f)) continue;
    const _Float16 h = static_cast<_Float16>(f);
    EXPECT_EQ(fp32_to_fp16(f), std::bit_cast<uint16_t>(h)) << std::hexfloat << f;
  }
#else
  GTEST_SKIP() << "compiler has no _Float16";
#endif
}

TEST(FloatConvert, E8M0) {
  EXPECT_EQ(e8m0_to_fp32(127), 1.0f);
  EXPECT_EQ(e8m0_to_fp32(130), 8.0f);
  EXPECT_EQ(e8m0_to_fp32(0), std::ldexp(1.0f, -127));
  EXPECT_TRUE(std::isnan(e8m0_to_fp32(255)));
}

}  // namespace
}  // namespace lowbit
