// lowbit's GPTQ against the original code's results (../shared/testdata/gptq): from W and H
// with each file's options, the dequantized result equals the reference Q on >= 99% of
// elements, its output error ‖X(Q−W)ᵀ‖² is within 1% of the reference's and below RTN's.
// Also the Hessian built from X by BLAS against the file's H, and the singular-H paths.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "lowbit/error.h"
#include "lowbit/gptq_case.h"
#include "lowbit/hessian.h"
#include "test_support.h"

namespace lowbit {
namespace {

std::vector<std::string> case_files() {
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(test::shared_path("testdata/gptq"))) {
    if (e.path().extension() == ".safetensors") files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

TEST(GptqOracle, EveryCaseMatchesTheReference) {
  const auto files = case_files();
  ASSERT_EQ(files.size(), 7u);
  for (const auto& path : files) {
    const GptqCase c = load_gptq_case(path);
    ASSERT_FALSE(c.q_reference.empty()) << path;
    ASSERT_GT(c.reference_error_gptq, 0) << path;
    const GptqCaseResult r = run_gptq_case(c);
    const std::string name = std::filesystem::path(path).stem().string();
    std::cout << name << ": agreement " << r.agreement << ", error " << r.error_gptq << " (reference " << c.reference_error_gptq
              << "), RTN " << r.error_rtn << " (reference " << c.reference_error_rtn << "), dead " << r.dead_columns << "\n";
    EXPECT_GE(r.agreement, 0.99) << name;
    EXPECT_NEAR(r.error_gptq, c.reference_error_gptq, 0.01 * c.reference_error_gptq) << name;
    EXPECT_LT(r.error_gptq, r.error_rtn) << name;
    // Our RTN is the reference's quantizer: its error matches the file's to float noise.
    EXPECT_NEAR(r.error_rtn, c.reference_error_rtn, 1e-4 * c.reference_error_rtn) << name;
    EXPECT_EQ(r.dead_columns, 2) << name << ": X has two all-zero columns";
    // The same from X alone (H by lowbit's BLAS accumulation). H then differs from the
    // reference's in the last float bits, and one rounding decision that flips moves every
    // later column through the error feedback: the elements need not agree (85% at 2 bits),
    // the error must.
    GptqCase from_x = c;
    from_x.h.clear();
    const GptqCaseResult rx = run_gptq_case(from_x);
    EXPECT_NEAR(rx.error_gptq, c.reference_error_gptq, 0.01 * c.reference_error_gptq) << name << " with H from X";
  }
}

TEST(GptqOracle, HessianFromInputsEqualsTheReferenceH) {
  const GptqCase c = load_gptq_case(case_files().front());
  HessianAccumulator acc(c.cols);
  for (int64_t t = 0; t < c.tokens; t += 100) acc.add(c.x.data() + t * c.cols, std::min<int64_t>(100, c.tokens - t));
  const auto h = acc.take_hessian();
  // The reference's add_batch counts a 2-D batch as one sample (nsamples += 1 per batch of
  // 256 rows), so its H is 2/4·Σ x xᵀ = 256 × ours. GPTQ does not depend on H's scale.
  const double batch_rows = 256;
  double max_rel = 0, max_h = 0;
  for (float v : c.h) max_h = std::max(max_h, std::fabs(static_cast<double>(v)));
  for (size_t i = 0; i < h.size(); ++i) max_rel = std::max(max_rel, std::fabs(batch_rows * h[i] - c.h[i]) / max_h);
  EXPECT_LT(max_rel, 1e-5);  // float32 accumulation in the reference
  EXPECT_EQ(acc.tokens(), c.tokens);
}

TEST(GptqOracle, SingularHessianIsDampedOrRefused) {
  // A rank-one H (one calibration token): plain damping makes it positive definite.
  const int64_t rows = 4, cols = 8;
  std::vector<float> w = test::gaussian(rows * cols, 1);
  std::vector<float> x = test::gaussian(cols, 2);
  HessianAccumulator acc(cols);
  acc.add(x.data(), 1);
  GptqMinMaxQuantizer q4(4, 0, false, rows);
  const GptqResult ok = gptq_quantize(w, rows, cols, acc.take_hessian(), q4, {});
  EXPECT_EQ(ok.q.size(), w.size());
  EXPECT_DOUBLE_EQ(ok.percdamp, 0.01);
  // A matrix with a negative eigenvalue needs more damping: it is raised until it works.
  std::vector<double> h(cols * cols, 0.0);
  for (int64_t i = 0; i < cols; ++i) h[i * cols + i] = 1.0;
  h[0 * cols + 1] = h[1 * cols + 0] = 1.05;  // eigenvalues 2.05 and -0.05
  const GptqResult raised = gptq_quantize(w, rows, cols, h, q4, {});
  EXPECT_GT(raised.percdamp, 0.04);
  // With no room to raise it: a clear error, not NaN weights.
  EXPECT_THROW(gptq_quantize(w, rows, cols, h, q4, {.damp_increment = 0.01, .max_percdamp = 0.02}), Error);
  std::vector<double> nan_h = h;
  nan_h[3] = NAN;
  EXPECT_THROW(gptq_quantize(w, rows, cols, nan_h, q4, {}), Error);
}

}  // namespace
}  // namespace lowbit
