// Round trip of every format in the table on the inputs quantizers get wrong: gaussian,
// heavy-tailed, all-zero, constant and single-outlier rows, each within the tolerance in
// the format's own table row; NaN/Inf refused with the position; determinism across
// thread counts; partial-row decoding equal to full decoding.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <limits>

#include "lowbit/error.h"
#include "lowbit/format.h"
#include "test_support.h"

namespace lowbit {
namespace {

constexpr int64_t kRows = 6, kCols = 4096;

class FormatRoundTrip : public ::testing::TestWithParam<std::string> {
 protected:
  const Format& f() const { return format_by_name(GetParam()); }
  std::vector<float> round_trip(const std::vector<float>& x, int64_t rows = kRows,
                                int64_t cols = kCols, const float* importance = nullptr) const {
    const auto q = quantize_tensor(f(), x, rows, cols, importance);
    EXPECT_EQ(q.size(), f().tensor_bytes(rows, cols));
    return dequantize_tensor(f(), q, rows, cols);
  }
};

TEST_P(FormatRoundTrip, GaussianWithinTolerance) {
  const auto x = test::gaussian(kRows * kCols, 1, 0.02f);
  const double err = test::relative_rmse(x, round_trip(x));
  EXPECT_LE(err, f().tolerance.gaussian) << GetParam();
  RecordProperty("relative_rmse", std::to_string(err));
}

TEST_P(FormatRoundTrip, HeavyTailedWithinTolerance) {
  const auto x = test::student_t3(kRows * kCols, 2, 0.02f);
  EXPECT_LE(test::relative_rmse(x, round_trip(x)), f().tolerance.heavy_tailed) << GetParam();
}

TEST_P(FormatRoundTrip, ImportanceWeightedWithinTolerance) {
  const auto x = test::gaussian(kRows * kCols, 3, 0.02f);
  std::vector<float> importance(kCols);
  const auto noise = test::gaussian(kCols, 4);
  for (int64_t c = 0; c < kCols; ++c) importance[c] = std::exp(noise[c]);  // log-normal
  EXPECT_LE(test::relative_rmse(x, round_trip(x, kRows, kCols, importance.data())),
            f().tolerance.gaussian * 1.1)
      << GetParam();
}

TEST_P(FormatRoundTrip, AllZeroDecodesToZero) {
  const std::vector<float> x(kRows * kCols, 0.0f);
  for (float v : round_trip(x)) ASSERT_EQ(v, 0.0f) << GetParam();
}

TEST_P(FormatRoundTrip, ConstantRows) {
  // A constant is one value repeated: its error is a single rounding, bounded like an outlier.
  const double bound = std::max(f().tolerance.gaussian, f().tolerance.outlier);
  for (float c : {0.5f, -0.3f, 1e-3f}) {
    const std::vector<float> x(kRows * kCols, c);
    const auto y = round_trip(x);
    for (float v : y) ASSERT_TRUE(std::isfinite(v)) << GetParam();
    EXPECT_LE(test::relative_rmse(x, y), bound) << GetParam() << " constant " << c;
  }
}

TEST_P(FormatRoundTrip, SingleOutlierIsKept) {
  auto x = test::gaussian(kRows * kCols, 5, 0.01f);
  const size_t at = 2 * kCols + 77;
  x[at] = 3.0f;
  const auto y = round_trip(x);
  for (float v : y) ASSERT_TRUE(std::isfinite(v)) << GetParam();
  EXPECT_LE(std::fabs(y[at] - x[at]) / x[at], f().tolerance.outlier) << GetParam();
}

TEST_P(FormatRoundTrip, NonFiniteInputIsRefusedWithItsPosition) {
  for (float bad : {NAN, INFINITY, -INFINITY}) {
    auto x = test::gaussian(kRows * kCols, 6);
    x[3 * kCols + 100] = bad;
    try {
      quantize_tensor(f(), x, kRows, kCols);
      FAIL() << GetParam() << " accepted " << bad;
    } catch (const Error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("row 3"), std::string::npos) << what;
      EXPECT_NE(what.find("column 100"), std::string::npos) << what;
    }
  }
}

TEST_P(FormatRoundTrip, LargestStorableWeightStaysFiniteAndLargerIsRefused) {
  auto x = test::gaussian(kRows * kCols, 12, 0.02f);
  x[kCols + 5] = f().max_abs_input;
  x[kCols + 6] = -f().max_abs_input;
  for (float v : round_trip(x)) ASSERT_TRUE(std::isfinite(v)) << GetParam();
  if (f().max_abs_input < std::numeric_limits<float>::max()) {
    x[4 * kCols + 9] = std::nextafter(f().max_abs_input, INFINITY);
    try {
      quantize_tensor(f(), x, kRows, kCols);
      FAIL() << GetParam() << " accepted a weight beyond its range";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("row 4, column 9 exceeds"), std::string::npos) << e.what();
    }
  }
}

TEST_P(FormatRoundTrip, DeterministicAcrossThreadCounts) {
  const auto x = test::student_t3(64 * kCols, 7, 0.02f);
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  const auto one = quantize_tensor(f(), x, 64, kCols);
  omp_set_num_threads(4);
  const auto four = quantize_tensor(f(), x, 64, kCols);
  omp_set_num_threads(saved);
  EXPECT_EQ(one, four) << GetParam();
}

TEST_P(FormatRoundTrip, PartialRowsDecodeLikeTheWhole) {
  const auto x = test::gaussian(kRows * kCols, 8, 0.02f);
  const auto q = quantize_tensor(f(), x, kRows, kCols);
  const auto all = dequantize_tensor(f(), q, kRows, kCols);
  std::vector<float> part(2 * kCols);
  f().dequantize(q.data(), kRows, kCols, 3, 5, part.data());
  EXPECT_TRUE(std::equal(part.begin(), part.end(), all.begin() + 3 * kCols)) << GetParam();
}

TEST_P(FormatRoundTrip, ShapeErrors) {
  if (f().block_size > 1) {
    const auto x = test::gaussian(kRows * (f().block_size + 1), 9);
    EXPECT_THROW(quantize_tensor(f(), x, kRows, f().block_size + 1), Error) << GetParam();
  }
  const auto x = test::gaussian(kRows * kCols, 10);
  EXPECT_THROW(quantize_tensor(f(), x, kRows + 1, kCols), Error);
  const auto q = quantize_tensor(f(), x, kRows, kCols);
  EXPECT_THROW(dequantize_tensor(f(), std::span(q).first(q.size() - 1), kRows, kCols), Error);
}

std::vector<std::string> all_format_names() {
  std::vector<std::string> names;
  for (const auto& f : format_table()) names.emplace_back(f.name);
  return names;
}

INSTANTIATE_TEST_SUITE_P(AllFormats, FormatRoundTrip, ::testing::ValuesIn(all_format_names()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace lowbit
