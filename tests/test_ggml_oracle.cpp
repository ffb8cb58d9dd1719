// lowbit's GGUF formats against ggml's own quantization of the same rows
// (../shared/testdata/ggml/quant-vectors.safetensors, made with llama.cpp c392e509):
// decoding is bit-exact, encoding is byte-identical for the deterministic formats and at
// least as accurate (within 1%) for the searched ones, with and without an imatrix.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "lowbit/format.h"
#include "lowbit/safetensors.h"
#include "test_support.h"

namespace lowbit {
namespace {

constexpr int64_t kRows = 8, kCols = 512;

const SafetensorsFile& vectors() {
  static const SafetensorsFile file(test::shared_path("testdata/ggml/quant-vectors.safetensors"));
  return file;
}

std::vector<std::string> ggml_type_names() {
  const auto ids = nlohmann::json::parse(vectors().metadata().at("gguf_type_ids"));
  std::vector<std::string> names;
  for (const auto& [name, id] : ids.items()) names.push_back(name);
  return names;
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(c));
  return s;
}

std::vector<uint8_t> bytes_of(const std::string& name) {
  const auto& t = vectors().tensor(name);
  return {t.data.begin(), t.data.end()};
}

std::vector<float> floats_of(const std::string& name) { return vectors().to_f32(vectors().tensor(name)); }

// Formats whose encoder is deterministic arithmetic (no search): lowbit writes ggml's bytes.
bool byte_exact_encoder(const std::string& name) {
  for (const char* n : {"f16", "bf16", "q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "tq1_0", "tq2_0"}) {
    if (name == n) return true;
  }
  return false;
}

class GgmlOracle : public ::testing::TestWithParam<std::string> {
 protected:
  const Format& format() const { return format_by_name(lower(GetParam())); }
};

TEST_P(GgmlOracle, TypeIdMatches) {
  const auto ids = nlohmann::json::parse(vectors().metadata().at("gguf_type_ids"));
  EXPECT_EQ(format().gguf_type, ids.at(GetParam()).get<int>());
  EXPECT_EQ(format().tensor_bytes(kRows, kCols), vectors().tensor(GetParam() + ".q").data.size());
}

TEST_P(GgmlOracle, DecodeIsBitExact) {
  for (const std::string suffix : {"", ".imat"}) {
    const auto q = bytes_of(GetParam() + suffix + ".q");
    const auto expected = floats_of(GetParam() + suffix + ".deq");
    const auto got = dequantize_tensor(format(), q, kRows, kCols);
    ASSERT_EQ(got.size(), expected.size());
    int mismatches = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      if (std::memcmp(&got[i], &expected[i], 4) != 0 && mismatches++ < 5) {
        ADD_FAILURE() << GetParam() << suffix << " element " << i << " (row " << i / kCols
                      << "): lowbit " << got[i] << " ggml " << expected[i];
      }
    }
    EXPECT_EQ(mismatches, 0) << GetParam() << suffix;
  }
}

TEST_P(GgmlOracle, EncodePlainRows) {
  const auto x = floats_of("x");
  const auto ours = quantize_tensor(format(), x, kRows, kCols);
  const auto theirs = bytes_of(GetParam() + ".q");
  if (byte_exact_encoder(lower(GetParam()))) {
    EXPECT_EQ(ours, theirs) << GetParam() << ": bytes differ from ggml's";
  }
  const auto ours_deq = dequantize_tensor(format(), ours, kRows, kCols);
  const auto theirs_deq = floats_of(GetParam() + ".deq");
  for (int64_t r = 0; r < kRows; ++r) {
    double se_ours = 0, se_theirs = 0;
    for (int64_t c = 0; c < kCols; ++c) {
      const size_t i = r * kCols + c;
      se_ours += std::pow(static_cast<double>(x[i]) - ours_deq[i], 2);
      se_theirs += std::pow(static_cast<double>(x[i]) - theirs_deq[i], 2);
    }
    const double rmse_ours = std::sqrt(se_ours / kCols), rmse_theirs = std::sqrt(se_theirs / kCols);
    EXPECT_LE(rmse_ours, rmse_theirs * 1.01 + 1e-12)
        << GetParam() << " row " << r << ": lowbit rmse " << rmse_ours << ", ggml " << rmse_theirs;
  }
}

TEST_P(GgmlOracle, EncodeImatrixRows) {
  const auto x = floats_of("x");
  const auto imatrix = floats_of("imatrix");
  const auto ours = quantize_tensor(format(), x, kRows, kCols, imatrix.data());
  const auto ours_deq = dequantize_tensor(format(), ours, kRows, kCols);
  const auto theirs_deq = floats_of(GetParam() + ".imat.deq");
  for (int64_t r = 0; r < kRows; ++r) {
    double e_ours = 0, e_theirs = 0;
    for (int64_t c = 0; c < kCols; ++c) {
      const size_t i = r * kCols + c;
      e_ours += imatrix[c] * std::pow(static_cast<double>(x[i]) - ours_deq[i], 2);
      e_theirs += imatrix[c] * std::pow(static_cast<double>(x[i]) - theirs_deq[i], 2);
    }
    EXPECT_LE(e_ours, e_theirs * 1.01 + 1e-18)
        << GetParam() << " row " << r << ": lowbit weighted error " << e_ours << ", ggml "
        << e_theirs;
  }
}

INSTANTIATE_TEST_SUITE_P(AllGgmlTypes, GgmlOracle, ::testing::ValuesIn(ggml_type_names()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace lowbit
