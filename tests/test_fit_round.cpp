// The fit/round steps of every format that has them: fitting each block and rounding every
// element to its own value gives exactly the bytes of the format's reference quantizer
// (with and without importance), and round returns exactly the value the bytes decode to.
// The formats GPTQ must reach all have them.
#include <gtest/gtest.h>

#include <cmath>

#include "lowbit/format.h"
#include "quant/format_quantizer.h"
#include "test_support.h"

namespace lowbit {
namespace {

TEST(FitRound, TwoStepsGiveTheReferenceBytes) {
  int checked = 0;
  for (const Format& f : format_table()) {
    if (f.fit_round == nullptr) continue;
    ++checked;
    const int64_t block = f.block_size == kPerRow ? 96 : f.block_size;
    for (int64_t cols : {block, 3 * block}) {
      const int64_t rows = 5;
      for (bool heavy : {false, true}) {
        auto w = heavy ? test::student_t3(rows * cols, 7 + cols, 0.02f) : test::gaussian(rows * cols, 3 + cols, 0.02f);
        w[3] = 0.0f;                                         // a zero
        for (int64_t c = 0; c < std::min<int64_t>(cols, 32); ++c) w[rows / 2 * cols + c] = 0.0f;  // a zero run
        std::vector<float> importance = test::gaussian(cols, 11);
        for (auto& v : importance) v = v * v + 0.01f;
        for (const float* imp : {static_cast<const float*>(nullptr), static_cast<const float*>(importance.data())}) {
          const auto expected = quantize_tensor(f, w, rows, cols, imp);
          const auto got = fit_round_tensor(f, w, rows, cols, imp);
          ASSERT_EQ(got.size(), expected.size()) << f.name;
          EXPECT_TRUE(got == expected) << f.name << " cols " << cols << (heavy ? " heavy" : "") << (imp ? " importance" : "");
        }
      }
    }
  }
  EXPECT_GT(checked, 0);
}

TEST(FitRound, RoundReturnsTheDecodedValue) {
  // Values shifted a little (as GPTQ's error feedback does) and far outside the fitted
  // range (3x: every format must clamp, not wrap).
  for (const float factor : {0.9f, 3.0f, -3.0f})
  for (const Format& f : format_table()) {
    if (f.fit_round == nullptr) continue;
    const int64_t rows = 3, cols = f.block_size == kPerRow ? 64 : 2 * f.block_size;
    const auto w = test::gaussian(rows * cols, 5, 0.05f);
    FormatQuantizer fq(f, rows, cols, w);
    const int64_t block = fq.group_size() == 0 ? cols : fq.group_size();
    std::vector<std::vector<float>> columns(cols, std::vector<float>(rows));
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c = 0; c < cols; ++c) columns[c][r] = w[r * cols + c];
    }
    std::vector<float> q(rows * cols), qc(rows);
    for (int64_t g = 0; g < cols / block; ++g) {
      std::vector<const float*> ptrs;
      for (int64_t i = 0; i < block; ++i) ptrs.push_back(columns[g * block + i].data());
      fq.fit(g, ptrs, nullptr);
      // Round to shifted values (as GPTQ does after error feedback), not the fitted ones.
      for (int64_t i = 0; i < block; ++i) {
        std::vector<float> shifted = columns[g * block + i];
        for (auto& v : shifted) v *= factor;
        fq.round(g, i, shifted.data(), qc.data());
        for (int64_t r = 0; r < rows; ++r) q[r * cols + g * block + i] = qc[r];
      }
    }
    const auto decoded = dequantize_tensor(f, fq.take_bytes(), rows, cols);
    EXPECT_EQ(decoded, q) << f.name << " x" << factor;
  }
}

TEST(FitRound, TheFormatsGptqTargetsHaveThem) {
  for (const char* name : {"q4_k", "q3_k", "q2_k", "q5_k", "q6_k", "q4_0", "q8_0", "iq4_nl", "iq4_xs", "nf4", "fp4",
                           "int2_g64_asym", "int3_g64_asym", "int4_g128_asym", "int4_g32_sym", "int8_pc_asym", "int4_pc_sym"}) {
    EXPECT_NE(format_by_name(name).fit_round, nullptr) << name;
  }
}

}  // namespace
}  // namespace lowbit
