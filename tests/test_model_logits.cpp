// The engine against the reference logits of the three shared models
// (../shared/testdata/logits): max |lowbit - reference| <= 1e-3 x max |reference| at every
// position, from each model's native files and from lowbit's own GGUF conversion, and
// greedy decoding reproduces the reference continuation text.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "lowbit/engine.h"
#include "lowbit/model_io.h"
#include "lowbit/gguf.h"
#include "lowbit/float_convert.h"
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include "lowbit/safetensors.h"
#include "test_support.h"

namespace lowbit {
namespace {

struct Reference {
  std::vector<int32_t> tokens;
  std::vector<float> logits;  // (T, vocab)
  int64_t prompt_tokens;
  std::string text;
};

Reference load_reference(const std::string& name) {
  const SafetensorsFile f(test::shared_path("testdata/logits/" + name + ".safetensors"));
  Reference r;
  const auto& t = f.tensor("tokens");
  r.tokens.resize(t.numel());
  std::memcpy(r.tokens.data(), t.data.data(), t.data.size());
  r.logits = f.to_f32(f.tensor("logits"));
  r.prompt_tokens = std::stoll(f.metadata().at("prompt_tokens"));
  r.text = f.metadata().at("text");
  return r;
}

// max |lowbit - reference| / max |reference| over all positions' logits.
float relative_logits_diff(const Model& model, const Reference& ref) {
  const int64_t T = static_cast<int64_t>(ref.tokens.size());
  Engine engine(model, T);
  std::vector<float> logits(T * model.config.vocab_size);
  engine.forward(ref.tokens, 0, logits.data(), true);
  float max_ref = 0, max_diff = 0;
  for (size_t i = 0; i < logits.size(); ++i) {
    max_ref = std::max(max_ref, std::fabs(ref.logits[i]));
    max_diff = std::max(max_diff, std::fabs(logits[i] - ref.logits[i]));
  }
  return max_diff / max_ref;
}

void expect_logits_match(const Model& model, const Reference& ref, const std::string& what) {
  const int64_t T = static_cast<int64_t>(ref.tokens.size());
  const int64_t V = model.config.vocab_size;
  ASSERT_EQ(static_cast<int64_t>(ref.logits.size()), T * V) << what;
  const float rel = relative_logits_diff(model, ref);
  EXPECT_LE(rel, 1e-3f) << what << ": max |diff| / max |logit| = " << rel;
  ::testing::Test::RecordProperty("max_relative_diff", std::to_string(rel));
}

// Greedy decoding from the prompt with the KV cache, one token at a time.
void expect_greedy_text(const Model& model, const Reference& ref, const std::string& what) {
  const int64_t T = static_cast<int64_t>(ref.tokens.size());
  const int64_t V = model.config.vocab_size;
  Engine engine(model, T);
  std::vector<int32_t> tokens(ref.tokens.begin(), ref.tokens.begin() + ref.prompt_tokens);
  std::vector<float> logits(V);
  engine.forward(tokens, 0, logits.data(), false);
  while (static_cast<int64_t>(tokens.size()) < T) {
    const auto next = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    tokens.push_back(next);
    if (static_cast<int64_t>(tokens.size()) == T) break;
    engine.forward(std::span(&tokens.back(), 1), static_cast<int64_t>(tokens.size()) - 1, logits.data(), false);
  }
  EXPECT_EQ(tokens, ref.tokens) << what;
  const std::vector<int32_t> after_bos(tokens.begin() + 1, tokens.end());
  std::string text;
  int32_t prev = tokens[0];
  for (int32_t id : after_bos) {
    text += model.tokenizer->decode_token(prev, id);
    prev = id;
  }
  EXPECT_EQ(text, ref.text) << what;
}

// The prompt tokenizes to the reference prompt, logits and greedy text match.
void check_native(const Model& m, const Reference& ref, const std::string& prompt, const std::string& what) {
  EXPECT_EQ(m.tokenizer->encode(prompt, true),
            std::vector<int32_t>(ref.tokens.begin(), ref.tokens.begin() + ref.prompt_tokens)) << what;
  expect_logits_match(m, ref, what);
  expect_greedy_text(m, ref, what);
}

TEST(ModelLogits, Stories260KFromLlama2c) {
  const auto ref = load_reference("stories260K");
  const Model m = load_llama2c(test::shared_path("models/stories260K/stories260K.bin"),
                               test::shared_path("models/stories260K/tok512.bin"));
  check_native(m, ref, "Once upon a time", "stories260K llama2.c");
}


TEST(ModelLogits, Tinystories656kFromHfFolder) {
  const auto ref = load_reference("tinystories-656k");
  const Model m = load_hf_folder(test::shared_path("models/tinystories-656k"));
  EXPECT_TRUE(m.config.tied_output);
  check_native(m, ref, "Once upon a time", "tinystories-656k HF");
}

TEST(ModelLogits, ShakespeareFromHfFolder) {
  const auto ref = load_reference("shakespeare-llama-4m");
  const Model m = load_hf_folder(test::shared_path("models/shakespeare-llama-4m"));
  EXPECT_FALSE(m.config.tied_output);
  check_native(m, ref, "ROMEO:", "shakespeare-llama-4m HF");
}


// Native -> lowbit GGUF -> read back: logits and greedy text still match the reference.
void check_gguf_round_trip(const Model& native, const std::string& name) {
  const std::string path = test::temp_dir() + "/" + name + ".gguf";
  save_gguf(native, path);
  const Model g = load_model(path);
  EXPECT_EQ(g.config.rope_style, RopeStyle::kAdjacentPairs);
  EXPECT_EQ(g.config.dim, native.config.dim);
  EXPECT_EQ(g.config.n_kv_heads, native.config.n_kv_heads);
  EXPECT_FLOAT_EQ(g.config.norm_eps, native.config.norm_eps);
  const auto ref = load_reference(name);
  expect_logits_match(g, ref, name + " via GGUF");
  expect_greedy_text(g, ref, name + " via GGUF");
}

TEST(ModelLogits, Stories260KViaGguf) {
  check_gguf_round_trip(load_llama2c(test::shared_path("models/stories260K/stories260K.bin"),
                                     test::shared_path("models/stories260K/tok512.bin")),
                        "stories260K");
}

TEST(ModelLogits, Tinystories656kViaGguf) {
  check_gguf_round_trip(load_hf_folder(test::shared_path("models/tinystories-656k")), "tinystories-656k");
}

TEST(ModelLogits, ShakespeareViaGguf) {
  check_gguf_round_trip(load_hf_folder(test::shared_path("models/shakespeare-llama-4m")), "shakespeare-llama-4m");
}


// A sharded Hugging Face folder in bf16 / f16 (two shards + index): loads, the weights
// are exactly the converted values, and logits stay close to the f32 reference.
void check_sharded(DType dtype, float tolerance) {
  namespace fs = std::filesystem;
  const std::string src = test::shared_path("models/shakespeare-llama-4m");
  const std::string dir = test::temp_dir();
  for (const char* f : {"config.json", "tokenizer.model"}) fs::copy_file(src + "/" + f, dir + "/" + f);
  const SafetensorsFile original(src + "/model.safetensors");
  std::vector<std::vector<uint8_t>> buffers;
  std::vector<TensorToWrite> shard[2];
  nlohmann::json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", nlohmann::json::object()}};
  int k = 0;
  for (const auto& t : original.tensors()) {
    const auto x = original.to_f32(t);
    auto& bytes = buffers.emplace_back(x.size() * 2);
    for (size_t i = 0; i < x.size(); ++i) {
      const uint16_t h = dtype == DType::BF16 ? fp32_to_bf16(x[i]) : fp32_to_fp16(x[i]);
      std::memcpy(bytes.data() + 2 * i, &h, 2);
    }
    const int s = k++ % 2;
    shard[s].push_back({t.name, dtype, t.shape, {}});
    index["weight_map"][t.name] = "model-0000" + std::to_string(s + 1) + "-of-00002.safetensors";
  }
  // buffers are in tensor order; shards took tensors round-robin: find each by name.
  size_t b = 0;
  std::map<std::string, size_t> slot;
  for (const auto& t : original.tensors()) slot[t.name] = b++;
  for (int s = 0; s < 2; ++s) {
    for (auto& t : shard[s]) t.data = buffers[slot[t.name]];
    write_safetensors(dir + "/model-0000" + std::to_string(s + 1) + "-of-00002.safetensors", shard[s]);
  }
  std::ofstream(dir + "/model.safetensors.index.json") << index.dump();
  const Model m = load_hf_folder(dir);
  EXPECT_EQ(m.layers[0].attn_q.format->name, dtype == DType::BF16 ? "bf16" : "f16");
  EXPECT_LE(relative_logits_diff(m, load_reference("shakespeare-llama-4m")), tolerance) << dtype_name(dtype);
  // Converting (convert --outtype) stores the norms in f32 whatever the source held.
  EXPECT_EQ(m.layers[0].attn_norm.format, m.layers[0].attn_q.format);
  for (const char* outtype : {"f32", "q8_0"}) {
    const Model c = convert_weights(m, format_by_name(outtype));
    for (const Weight* w : c.weights()) {
      EXPECT_EQ(w->format->name, w->rows == 1 ? "f32" : outtype) << w->name << " " << dtype_name(dtype);
    }
  }
}

TEST(ModelLogits, ShardedBf16AndF16Folders) {
  check_sharded(DType::F16, 2e-3f);
  check_sharded(DType::BF16, 2e-2f);
}

TEST(ModelLogits, GgufVersion2IsRead) {
  const Model native = load_llama2c(test::shared_path("models/stories260K/stories260K.bin"),
                                    test::shared_path("models/stories260K/tok512.bin"));
  const std::string path = test::temp_dir() + "/v2.gguf";
  save_gguf(native, path);
  {  // v2 has the v3 layout (64-bit counts) with version 2
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    const uint32_t v2 = 2;
    f.seekp(4);
    f.write(reinterpret_cast<const char*>(&v2), 4);
  }
  const GgufFile file(path);
  EXPECT_EQ(file.version(), 2u);
  const Model m = load_gguf_model(path);
  expect_logits_match(m, load_reference("stories260K"), "stories260K via GGUF v2");
}

}  // namespace
}  // namespace lowbit
