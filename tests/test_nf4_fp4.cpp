// bitsandbytes-style formats: the NF4 code is the normal-quantile construction of QLoRA
// (recomputed here, not copied), the double-quantization map is bnb's dynamic map, the
// double quantization costs ~0.127 bits per weight, and the packing puts the first
// element of a pair in the high nibble as bnb does.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "formats/nf4_fp4_codes.h"
#include "lowbit/format.h"
#include "test_support.h"

namespace lowbit {
namespace {

// Inverse standard normal CDF by bisection on erfc (accurate to ~1e-12).
double norm_ppf(double p) {
  double lo = -10, hi = 10;
  for (int i = 0; i < 200; ++i) {
    const double mid = (lo + hi) / 2;
    (0.5 * std::erfc(-mid / std::sqrt(2.0)) < p ? lo : hi) = mid;
  }
  return (lo + hi) / 2;
}

TEST(Nf4, CodeIsTheQloraNormalQuantiles) {
  // bnb create_normal_map(offset=0.9677083, use_extra_value=True): 8 positive quantiles of
  // linspace(offset, 0.5, 9)[:-1], 7 negative of linspace(offset, 0.5, 8)[:-1], and 0,
  // normalised by the largest.
  const double offset = 0.9677083;
  std::vector<double> v;
  for (int i = 0; i < 8; ++i) v.push_back(norm_ppf(offset + (0.5 - offset) * i / 8));
  for (int i = 0; i < 7; ++i) v.push_back(-norm_ppf(offset + (0.5 - offset) * i / 7));
  v.push_back(0);
  std::sort(v.begin(), v.end());
  const double max = v.back();
  for (int i = 0; i < 16; ++i) {
    EXPECT_NEAR(formats::kNf4Code[i], v[i] / max, 2e-7) << "code " << i;
  }
}

TEST(Nf4, DynamicMapIsBnbs) {
  const float* map = formats::bnb_dynamic_map();
  for (int i = 1; i < 256; ++i) EXPECT_LT(map[i - 1], map[i]) << i;  // sorted, distinct
  EXPECT_EQ(map[255], 1.0f);
  EXPECT_NEAR(map[0], -0.99296875, 1e-6);      // -(mean of the last linspace(0.1,1,65) step)
  EXPECT_NEAR(map[128], 5.5e-7, 1e-12);        // smallest positive: 1e-6 * (0.1 + 1) / 2
  EXPECT_EQ(map[127], 0.0f);
  EXPECT_EQ(formats::nearest_dynamic_code(map, 1.0f), 255);
  EXPECT_EQ(formats::nearest_dynamic_code(map, 0.0f), 127);
}

TEST(Nf4, DoubleQuantizationCostsAboutAnEighthOfABit) {
  const Format& plain = format_by_name("nf4");
  const Format& dq = format_by_name("nf4_dq");
  EXPECT_DOUBLE_EQ(plain.bits_per_weight, 4.5);  // fp32 absmax per 64
  // 8-bit absmax per 64 weights + an fp32 scale per 256 blocks (+ one fp32 mean per tensor)
  EXPECT_NEAR(dq.bits_per_weight - 4.0, 0.127, 0.0005);
  EXPECT_NEAR(format_by_name("fp4_dq").bits_per_weight, dq.bits_per_weight, 1e-12);
}

TEST(Nf4, DoubleQuantizationCostsLittleAccuracy) {
  const auto x = test::gaussian(64 * 4096, 11, 0.02f);
  for (const auto& [a, b] : {std::pair{"nf4", "nf4_dq"}, std::pair{"fp4", "fp4_dq"}}) {
    const Format& plain = format_by_name(a);
    const Format& dq = format_by_name(b);
    const double e_plain = test::relative_rmse(x, dequantize_tensor(plain, quantize_tensor(plain, x, 64, 4096), 64, 4096));
    const double e_dq = test::relative_rmse(x, dequantize_tensor(dq, quantize_tensor(dq, x, 64, 4096), 64, 4096));
    EXPECT_LE(e_dq, e_plain * 1.01) << b;
  }
}

TEST(Nf4, PacksTheFirstElementInTheHighNibble) {
  std::vector<float> x(64, 0.0f);
  x[0] = 1.0f;   // code 15 (+1)
  x[1] = -1.0f;  // code 0 (-1)
  x[2] = 0.0f;   // code 7
  x[3] = 0.08f;  // code 8 (0.0796)
  const auto q = quantize_tensor(format_by_name("nf4"), x, 1, 64);
  float absmax;
  std::memcpy(&absmax, q.data(), 4);
  EXPECT_EQ(absmax, 1.0f);
  EXPECT_EQ(q[4], 0xF0);
  EXPECT_EQ(q[5], 0x78);
}

TEST(Fp4, CodeIsBnbsE2M1) {
  // bnb's FP4 decode tree: sign in bit 3; magnitudes 0, 1/192, 2/3, 1, 1/3, 1/2, 1/6, 1/4.
  const float mags[8] = {0.0f, 1.0f / 192, 2.0f / 3, 1.0f, 1.0f / 3, 0.5f, 1.0f / 6, 0.25f};
  for (int i = 0; i < 8; ++i) {
    EXPECT_NEAR(formats::kBnbFp4Code[i], mags[i], 1e-7);
    EXPECT_NEAR(formats::kBnbFp4Code[i + 8], -mags[i], 1e-7);
  }
}

}  // namespace
}  // namespace lowbit
