// The streaming weight encoder (quant/encode_weight.h) against quantize_tensor on the whole
// decoded tensor: the same bytes for every kind of format (fast encoder, scalar rows,
// importance weights, a whole-tensor format), with a row order applied, over several
// chunks; errors name the first bad value's row in output order, whatever the threads.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <numeric>

#include "lowbit/error.h"
#include "lowbit/format.h"
#include "lowbit/model.h"
#include "quant/encode_weight.h"
#include "test_support.h"

namespace lowbit {
namespace {

// A weight (rows, cols) stored in `source`, from seeded heavy-tailed values.
Weight make_weight(const Format& source, int64_t rows, int64_t cols, std::vector<float> x = {}) {
  if (x.empty()) x = test::student_t3(rows * cols, rows + cols, 0.02f);
  std::vector<uint8_t> raw(x.size() * 4);  // f32 as is (the error tests put NaN in)
  std::memcpy(raw.data(), x.data(), raw.size());
  auto bytes = std::make_shared<const std::vector<uint8_t>>(source.name == "f32" ? raw : quantize_tensor(source, x, rows, cols));
  Weight w;
  w.name = "blk.0.attn_q.weight";
  w.format = &source;
  w.rows = rows;
  w.cols = cols;
  w.data = *bytes;
  w.owned = bytes;
  return w;
}

// order[r] = the source row of output row r: pairs of rows swapped within blocks of 8.
std::vector<int64_t> shuffled_order(int64_t rows) {
  std::vector<int64_t> order(rows);
  std::iota(order.begin(), order.end(), 0);
  for (int64_t r = 0; r + 1 < rows; r += 2) std::swap(order[r], order[r + 1]);
  return order;
}

std::vector<float> apply_order(const Weight& w, const std::vector<int64_t>& order) {
  const auto x = w.to_f32();
  if (order.empty()) return x;
  std::vector<float> out(x.size());
  for (int64_t r = 0; r < w.rows; ++r) std::copy_n(x.begin() + order[r] * w.cols, w.cols, out.begin() + r * w.cols);
  return out;
}

TEST(EncodeWeight, SameBytesAsQuantizeTensorForEveryKindOfFormat) {
  const int64_t rows = 600, cols = 512;  // 128 rows per chunk: five chunks
  std::vector<float> importance(cols);
  for (int64_t c = 0; c < cols; ++c) importance[c] = 0.1f + static_cast<float>(c % 7);
  for (const char* source : {"f16", "bf16", "f32"}) {
    const Weight w = make_weight(format_by_name(source), rows, cols);
    for (const char* target : {"q4_0", "q8_0", "q4_k", "q6_k", "iq4_xs", "int4_g128_asym", "fp8_e4m3", "nf4_dq", "f16"}) {
      const Format& f = format_by_name(target);
      for (bool permuted : {false, true}) {
        for (bool with_importance : {false, true}) {
          const auto order = permuted ? shuffled_order(rows) : std::vector<int64_t>{};
          const float* imp = with_importance ? importance.data() : nullptr;
          const auto want = quantize_tensor(f, apply_order(w, order), rows, cols, imp);
          const auto got = encode_weight(w, f, order, imp);
          EXPECT_TRUE(got == want) << source << " -> " << target << (permuted ? " permuted" : "")
                                   << (with_importance ? " with importance" : "");
        }
      }
    }
  }
}

TEST(EncodeWeight, NamesTheFirstBadValueInOutputOrder) {
  const int64_t rows = 600, cols = 256;  // 256 rows per chunk
  auto x = test::student_t3(rows * cols, 5, 0.02f);
  x[551 * cols + 9] = std::numeric_limits<float>::infinity();  // chunk 2
  x[301 * cols + 7] = std::nanf("");                           // chunk 1: the first
  const Weight w = make_weight(format_by_name("f32"), rows, cols, x);
  for (const char* target : {"q4_0", "q4_k", "nf4_dq"}) {
    try {
      encode_weight(w, format_by_name(target), {}, nullptr);
      FAIL() << target << ": no error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("row 301, column 7"), std::string::npos) << target << ": " << e.what();
      EXPECT_NE(std::string(e.what()).find("nan"), std::string::npos) << e.what();
    }
    try {  // source row 301 is output row 300 once pairs are swapped
      encode_weight(w, format_by_name(target), shuffled_order(rows), nullptr);
      FAIL() << target << ": no error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("row 300, column 7"), std::string::npos) << target << ": " << e.what();
    }
  }
  // Too large for fp16 scales: the value and the limit are named.
  auto big = test::student_t3(rows * cols, 6, 0.02f);
  big[10 * cols + 3] = 1e6f;
  try {
    encode_weight(make_weight(format_by_name("f32"), rows, cols, big), format_by_name("q8_0"), {}, nullptr);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("row 10, column 3"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("65504"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace lowbit
