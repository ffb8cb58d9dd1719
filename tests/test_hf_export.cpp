// Plain Hugging Face folders written by lowbit (convert MODEL -o DIR --outtype f16|bf16|f32):
// HF -> GGUF -> HF reproduces every tensor byte for byte, and the folder has the layout
// transformers' LlamaForCausalLM loads: its state-dict names and [out, in] shapes, the
// config keys LlamaConfig reads, and a tokenizer.json (from any vocabulary, GGUF included)
// that tokenizes as the source does.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "core/json_fields.h"
#include "lowbit/model_io.h"
#include "lowbit/quantize.h"
#include "lowbit/safetensors.h"
#include "test_support.h"

namespace lowbit {
namespace {

void convert(const std::string& in, const std::string& out, const std::string& type) {
  QuantizeOptions o;
  o.input = in;
  o.output = out;
  o.recipe = "pure:" + type;
  quantize_model(o);
}

// name -> (dtype, shape, bytes)
std::map<std::string, std::tuple<DType, std::vector<int64_t>, std::vector<uint8_t>>> tensors_of(const std::string& file) {
  const SafetensorsFile f(file);
  std::map<std::string, std::tuple<DType, std::vector<int64_t>, std::vector<uint8_t>>> out;
  for (const auto& t : f.tensors()) out[t.name] = {t.dtype, t.shape, std::vector<uint8_t>(t.data.begin(), t.data.end())};
  return out;
}

TEST(HfExport, HfToGgufToHfIsExactForEveryFloatType) {
  const std::string dir = test::temp_dir(), source = test::shared_path("models/shakespeare-llama-4m");
  for (const char* type : {"f32", "f16", "bf16"}) {
    const std::string first = dir + "/first-" + type, gguf = dir + "/" + type + ".gguf", back = dir + "/back-" + type;
    convert(source, first, type);  // the HF model in this type (f32: the source's own bytes)
    convert(first, gguf, type);
    convert(gguf, back, type);
    const auto a = tensors_of(first + "/model.safetensors"), b = tensors_of(back + "/model.safetensors");
    ASSERT_EQ(a.size(), b.size()) << type;
    for (const auto& [name, t] : a) {
      ASSERT_TRUE(b.count(name)) << type << " " << name;
      EXPECT_TRUE(t == b.at(name)) << type << " " << name << " differs after HF -> GGUF -> HF";
    }
    if (std::string(type) == "f32") {
      const auto original = tensors_of(source + "/model.safetensors");
      for (const auto& [name, t] : original) EXPECT_TRUE(t == a.at(name)) << "f32 copy of " << name;
    }
  }
}

TEST(HfExport, FolderHasTheLayoutTransformersLlamaLoads) {
  const std::string dir = test::temp_dir();
  convert(test::shared_path("models/stories260K/stories260K.bin"), dir + "/hf", "f16");
  // LlamaConfig's keys.
  const Json config = read_json_file(dir + "/hf/config.json");
  for (const char* key : {"architectures", "model_type", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                          "num_key_value_heads", "vocab_size", "max_position_embeddings", "rms_norm_eps", "rope_theta", "hidden_act",
                          "tie_word_embeddings", "torch_dtype"}) {
    EXPECT_TRUE(config.contains(key)) << key;
  }
  EXPECT_EQ(config["architectures"][0], "LlamaForCausalLM");
  EXPECT_EQ(config["torch_dtype"], "float16");
  // LlamaForCausalLM's state dict: names and [out, in] shapes.
  const int64_t dim = config["hidden_size"], hidden = config["intermediate_size"], layers = config["num_hidden_layers"],
                heads = config["num_attention_heads"], kv = config["num_key_value_heads"], vocab = config["vocab_size"];
  std::map<std::string, std::vector<int64_t>> want{{"model.embed_tokens.weight", {vocab, dim}}, {"model.norm.weight", {dim}}};
  if (!config["tie_word_embeddings"].get<bool>()) want["lm_head.weight"] = {vocab, dim};
  for (int64_t l = 0; l < layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    want[p + "self_attn.q_proj.weight"] = {dim, dim};
    want[p + "self_attn.k_proj.weight"] = {kv * dim / heads, dim};
    want[p + "self_attn.v_proj.weight"] = {kv * dim / heads, dim};
    want[p + "self_attn.o_proj.weight"] = {dim, dim};
    want[p + "mlp.gate_proj.weight"] = {hidden, dim};
    want[p + "mlp.up_proj.weight"] = {hidden, dim};
    want[p + "mlp.down_proj.weight"] = {dim, hidden};
    want[p + "input_layernorm.weight"] = {dim};
    want[p + "post_attention_layernorm.weight"] = {dim};
  }
  const auto got = tensors_of(dir + "/hf/model.safetensors");
  ASSERT_EQ(got.size(), want.size());
  for (const auto& [name, shape] : want) {
    ASSERT_TRUE(got.count(name)) << name;
    EXPECT_EQ(std::get<1>(got.at(name)), shape) << name;
  }
  for (const char* f : {"tokenizer.json", "tokenizer_config.json", "generation_config.json"}) EXPECT_TRUE(std::filesystem::exists(dir + "/hf/" + f)) << f;
  const Json tok = read_json_file(dir + "/hf/tokenizer.json");
  EXPECT_EQ(tok["model"]["type"], "BPE");
  // The tokenizer.json tokenizes as the llama2.c tokenizer it came from.
  const Model native = load_model(test::shared_path("models/stories260K/stories260K.bin")), folder = load_model(dir + "/hf");
  for (const char* text : {"data/tinystories-sample-4k.txt", "data/shakespeare-test.txt"}) {
    const std::string t = test::read_file(test::shared_path(text));
    EXPECT_EQ(folder.tokenizer->encode(t, true), native.tokenizer->encode(t, true)) << text;
  }
}

}  // namespace
}  // namespace lowbit
