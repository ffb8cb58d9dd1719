// Quantized checkpoints of other libraries against their own dequantized values
// (../shared/testdata/checkpoints: slices of published GPTQ, AWQ, bitsandbytes and FP8
// checkpoints, with `expected` computed by GPTQModel, AutoAWQ, bitsandbytes or torch). Each
// slice is read through lowbit's layout reader, and the lowbit weight it gives must
// dequantize to `expected` bit for bit. The lowbit format chosen is checked too: exact
// formats where one holds the values (int4/int8 groups, nf4, nf4_dq, fp4, fp8 per row).
#include <gtest/gtest.h>

#include <cstring>

#include "io/checkpoints/checkpoint_layout.h"
#include "lowbit/format.h"
#include "lowbit/safetensors.h"
#include "test_support.h"

namespace lowbit {
namespace {

struct Slice {
  std::unique_ptr<SafetensorsFile> file;
  LinearTensors tensors;
  std::vector<float> expected;
  std::string meta(const std::string& key) const {
    const auto it = file->metadata().find(key);
    return it == file->metadata().end() ? "" : it->second;
  }
};

Slice open_slice(const std::string& name) {
  const std::string path = test::shared_path("testdata/checkpoints/" + name);
  auto file = std::make_unique<SafetensorsFile>(path);
  const SafetensorsFile* f = file.get();
  LinearTensors t("layer", path, [f](const std::string& n) -> const TensorView* { return f->find(n.substr(std::string("layer.").size())); });
  const TensorView* e = f->find("expected");
  std::vector<float> expected(static_cast<size_t>(e->numel()));
  std::memcpy(expected.data(), e->data.data(), 4 * expected.size());
  return {std::move(file), std::move(t), std::move(expected)};
}

// Every value bit for bit; the first difference is reported.
void expect_exact(const ImportedWeight& w, int64_t rows, int64_t cols, const std::vector<float>& expected, const std::string& what) {
  ASSERT_NE(w.format, nullptr);
  ASSERT_EQ(w.bytes.size(), w.format->tensor_bytes(rows, cols)) << what;
  const std::vector<float> got = dequantize_tensor(*w.format, w.bytes, rows, cols);
  ASSERT_EQ(got.size(), expected.size()) << what;
  size_t i = 0;
  while (i < got.size() && std::memcmp(&got[i], &expected[i], 4) == 0) ++i;
  EXPECT_EQ(i, got.size()) << what << " (" << w.format->name << "): first difference at " << i << ": " << (i < got.size() ? got[i] : 0)
                           << " vs " << (i < got.size() ? expected[i] : 0);
}

TEST(CheckpointOracles, GptqV1MatchesGptqModel) {
  const std::pair<const char*, const char*> files[] = {{"gptq_falcon3_1b_int4.safetensors", "int4_g128_sym"},
                                                       {"gptq_llama_3_2_1b_int4.safetensors", "int4_g128_sym"},
                                                       {"gptq_falcon3_1b_int8.safetensors", "int8_g128_sym"},
                                                       {"gptq_llama_3_2_1b_gptqmodel_int8.safetensors", "int8_g128_sym"}};
  for (const auto& [name, format] : files) {
    const Slice s = open_slice(name);
    QuantConfig q{.method = "gptq", .bits = std::stoi(s.meta("bits")), .group_size = std::stoll(s.meta("group_size")), .format = "gptq"};
    const ImportedWeight w = checkpoint_layout_for(q).read(q, s.tensors, 256, 256);
    EXPECT_EQ(w.format->name, format) << name;
    expect_exact(w, 256, 256, s.expected, name);
  }
}

TEST(CheckpointOracles, AwqGemmMatchesAutoAwq) {
  for (const char* name : {"awq_falcon3_1b_awq.safetensors", "awq_llama_3_2_1b_awq.safetensors"}) {
    const Slice s = open_slice(name);
    QuantConfig q{.method = "awq", .bits = 4, .group_size = 128, .format = "gemm"};
    const ImportedWeight w = checkpoint_layout_for(q).read(q, s.tensors, 256, 256);
    EXPECT_EQ(w.format->name, "int4_g128_asym") << name;
    expect_exact(w, 256, 256, s.expected, name);
  }
}

TEST(CheckpointOracles, Bitsandbytes4BitMatchesDequantize4bit) {
  const std::pair<const char*, const char*> files[] = {{"bnb_llama_1b_nf4.safetensors", "nf4"},
                                                       {"bnb_llama_1b_fp4.safetensors", "fp4"},
                                                       {"bnb_qwen3_mcqa_fp4.safetensors", "fp4"},
                                                       {"bnb_llama_1b_nf4_double_quant.safetensors", "nf4_dq"},
                                                       {"bnb_phi3_5_mini_nf4_dq.safetensors", "nf4_dq"},
                                                       {"bnb_qwen2_5_1_5b_nf4_dq.safetensors", "nf4_dq"}};
  for (const auto& [name, format] : files) {
    const Slice s = open_slice(name);
    Bnb4State st{.quant_type = s.meta("quant_type")};
    if (!s.meta("nested_offset").empty()) st.nested_offset = std::stof(s.meta("nested_offset"));
    // The slices are 4096 elements of a weight: one row of 4096 here.
    const ImportedWeight w = import_bnb4(st, s.tensors, 1, 4096);
    if (*format) {
      EXPECT_EQ(w.format->name, format) << name;
    }
    expect_exact(w, 1, 4096, s.expected, name);
  }
}

TEST(CheckpointOracles, BitsandbytesInt8MatchesVectorwiseDequant) {
  const Slice s = open_slice("bnb_llama_1b_int8.safetensors");
  const ImportedWeight w = import_bnb_int8(s.tensors, 256, 256);
  EXPECT_EQ(w.format->name, std::string_view("bnb_int8"));
  expect_exact(w, 256, 256, s.expected, "bnb int8");
}

TEST(CheckpointOracles, Fp8PerTensorPerRowAndBlockMatchTorch) {
  for (const char* name : {"fp8_llama_dynamic_per_channel.safetensors", "fp8_llama_static_per_tensor.safetensors", "fp8_ministral_per_tensor.safetensors",
                           "fp8_nvidia_llama_per_tensor.safetensors"}) {
    const Slice s = open_slice(name);
    const ImportedWeight w = import_fp8_rows(s.tensors, "weight_scale", 256, 256);
    EXPECT_EQ(w.format->name, "fp8_e4m3") << name;
    expect_exact(w, 256, 256, s.expected, name);
  }
  for (const char* name : {"fp8_exaone_fine_grained.safetensors", "fp8_qwen3_1_7b_fine_grained.safetensors", "fp8_qwen3_4b_fine_grained_f16.safetensors"}) {
    const Slice s = open_slice(name);
    QuantConfig q{.method = "fp8"};
    expect_exact(checkpoint_layout_for(q).read(q, s.tensors, 256, 256), 256, 256, s.expected, name);
  }
}

}  // namespace
}  // namespace lowbit
