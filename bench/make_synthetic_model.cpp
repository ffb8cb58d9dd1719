// Writes a synthetic Llama model as a Hugging Face folder (config.json, model.safetensors
// in f16, a byte-level tokenizer.json) with N(0, 0.02) weights: a model of any shape for
// memory and speed measurements, e.g. TinyLlama's 1.1B shape:
//   make_synthetic_model OUT_DIR --dim 2048 --hidden 5632 --layers 22 --heads 32 --kv-heads 4 --vocab 32000
#include <CLI/CLI.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <cstring>
#include <random>

#include "lowbit/float_convert.h"
#include "lowbit/safetensors.h"
#include "model/byte_level.h"

int main(int argc, char** argv) {
  CLI::App app{"write a synthetic Llama model (HF folder, f16)"};
  std::string out;
  int64_t dim = 256, hidden = 768, layers = 2, heads = 4, kv_heads = 2, vocab = 512;
  uint64_t seed = 1;
  app.add_option("out", out, "output folder")->required();
  app.add_option("--dim", dim);
  app.add_option("--hidden", hidden);
  app.add_option("--layers", layers);
  app.add_option("--heads", heads);
  app.add_option("--kv-heads", kv_heads);
  app.add_option("--vocab", vocab);
  app.add_option("--seed", seed);
  CLI11_PARSE(app, argc, argv);
  std::filesystem::create_directories(out);
  nlohmann::json config{{"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"}, {"hidden_size", dim},
                        {"intermediate_size", hidden}, {"num_hidden_layers", layers}, {"num_attention_heads", heads},
                        {"num_key_value_heads", kv_heads}, {"vocab_size", vocab}, {"max_position_embeddings", 2048},
                        {"rms_norm_eps", 1e-5}, {"rope_theta", 10000.0}, {"hidden_act", "silu"},
                        {"tie_word_embeddings", false}, {"torch_dtype", "float16"}};
  std::ofstream(out + "/config.json") << config.dump(2);
  // Byte-level tokenizer: the 256 byte symbols, no merges.
  nlohmann::json v = nlohmann::json::object();
  for (int b = 0; b < 256; ++b) v[lowbit::gpt2_byte_to_unicode(static_cast<uint8_t>(b))] = b;
  nlohmann::json tok{{"model", {{"type", "BPE"}, {"vocab", v}, {"merges", nlohmann::json::array()}}},
                     {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
                     {"decoder", {{"type", "ByteLevel"}}}, {"normalizer", nullptr}, {"added_tokens", nlohmann::json::array()}};
  std::ofstream(out + "/tokenizer.json") << tok.dump();

  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist(0.0f, 0.02f);
  std::vector<std::vector<uint8_t>> buffers;
  std::vector<lowbit::TensorToWrite> tensors;
  auto add = [&](const std::string& name, std::vector<int64_t> shape, bool ones) {
    int64_t n = 1;
    for (auto d : shape) n *= d;
    auto& b = buffers.emplace_back(static_cast<size_t>(n) * 2);
    for (int64_t i = 0; i < n; ++i) {
      const uint16_t h = lowbit::fp32_to_fp16(ones ? 1.0f : dist(rng));
      std::memcpy(b.data() + 2 * i, &h, 2);
    }
    tensors.push_back({name, lowbit::DType::F16, std::move(shape), {}});
  };
  const int64_t kv = kv_heads * (dim / heads);
  add("model.embed_tokens.weight", {vocab, dim}, false);
  for (int64_t l = 0; l < layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    add(p + "input_layernorm.weight", {dim}, true);
    add(p + "self_attn.q_proj.weight", {dim, dim}, false);
    add(p + "self_attn.k_proj.weight", {kv, dim}, false);
    add(p + "self_attn.v_proj.weight", {kv, dim}, false);
    add(p + "self_attn.o_proj.weight", {dim, dim}, false);
    add(p + "post_attention_layernorm.weight", {dim}, true);
    add(p + "mlp.gate_proj.weight", {hidden, dim}, false);
    add(p + "mlp.up_proj.weight", {hidden, dim}, false);
    add(p + "mlp.down_proj.weight", {dim, hidden}, false);
  }
  add("model.norm.weight", {dim}, true);
  add("lm_head.weight", {vocab, dim}, false);
  for (size_t i = 0; i < tensors.size(); ++i) tensors[i].data = buffers[i];
  lowbit::write_safetensors(out + "/model.safetensors", tensors);
  return 0;
}
