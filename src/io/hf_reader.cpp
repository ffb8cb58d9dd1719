// Hugging Face Llama folders: config.json, model.safetensors or a sharded
// model.safetensors.index.json, and tokenizer.model (SentencePiece, preferred) or
// tokenizer.json. Weights stay in the mapped safetensors files, in HF's rotate-half RoPE
// layout (the engine runs either layout; the GGUF writer permutes).
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "lowbit/error.h"
#include "lowbit/mapped_file.h"
#include "lowbit/model_io.h"
#include "io/gguf_llama.h"
#include "lowbit/gguf.h"
#include "lowbit/safetensors.h"
#include <sstream>

namespace lowbit {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

json read_json(const std::string& path) {
  if (!fs::exists(path)) throw Error("missing file", {.file = path});
  const MappedFile f(path);
  try {
    return json::parse(f.bytes().begin(), f.bytes().end());
  } catch (const json::exception& e) {
    throw Error(std::string("not valid JSON: ") + e.what(), {.file = path});
  }
}

int64_t get_int(const json& j, const char* key, const std::string& path, std::optional<int64_t> fallback = std::nullopt) {
  if (!j.contains(key) || j[key].is_null()) {
    if (fallback) return *fallback;
    throw Error(std::string("missing field '") + key + "'", {.file = path});
  }
  if (!j[key].is_number_integer()) throw Error(std::string("field '") + key + "' is not an integer", {.file = path, .value = j[key].dump()});
  return j[key].get<int64_t>();
}

double get_number(const json& j, const char* key, const std::string& path, double fallback) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  if (!j[key].is_number()) throw Error(std::string("field '") + key + "' is not a number", {.file = path, .value = j[key].dump()});
  return j[key].get<double>();
}

ModelConfig parse_config(const std::string& path) {
  const json j = read_json(path);
  if (!j.is_object()) throw Error("config.json is not an object", {.file = path});
  const std::string type = j.value("model_type", "");
  if (type != "llama" && type != "mistral") {
    throw Error("unsupported model_type (lowbit runs Llama-family models)", {.file = path, .value = type});
  }
  for (const char* flag : {"attention_bias", "mlp_bias"}) {
    if (j.value(flag, false)) throw Error(std::string("unsupported: '") + flag + "' is true", {.file = path});
  }
  if (j.contains("rope_scaling") && !j["rope_scaling"].is_null()) {
    throw Error("unsupported field 'rope_scaling'", {.file = path, .value = j["rope_scaling"].dump()});
  }
  if (j.value("hidden_act", "silu") != "silu") {
    throw Error("unsupported 'hidden_act'", {.file = path, .value = j.value("hidden_act", "")});
  }
  ModelConfig c;
  c.architecture = "llama";
  c.dim = get_int(j, "hidden_size", path);
  c.hidden_dim = get_int(j, "intermediate_size", path);
  c.n_layers = get_int(j, "num_hidden_layers", path);
  c.n_heads = get_int(j, "num_attention_heads", path);
  c.n_kv_heads = get_int(j, "num_key_value_heads", path, c.n_heads);
  c.vocab_size = get_int(j, "vocab_size", path);
  c.context_length = get_int(j, "max_position_embeddings", path, 2048);
  c.norm_eps = static_cast<float>(get_number(j, "rms_norm_eps", path, 1e-6));
  c.rope_theta = static_cast<float>(get_number(j, "rope_theta", path, 10000.0));
  c.tied_output = j.value("tie_word_embeddings", false);
  c.rope_style = RopeStyle::kRotateHalf;
  c.validate(path);
  if (j.contains("head_dim") && !j["head_dim"].is_null() && get_int(j, "head_dim", path) != c.head_dim()) {
    throw Error("unsupported 'head_dim' different from hidden_size / num_attention_heads", {.file = path, .value = j["head_dim"].dump()});
  }
  return c;
}

// lowbit stores formats safetensors has no dtype for as U8 bytes, with the format and shape
// in the metadata: "lowbit.format.NAME" = "q4_k", "lowbit.shape.NAME" = "rows,cols".
const Format& format_of(const TensorView& t, const SafetensorsFile& file) {
  if (const auto it = file.metadata().find("lowbit.format." + t.name); it != file.metadata().end()) {
    const Format* f = find_format(it->second);
    if (f == nullptr || t.dtype != DType::U8) throw Error("bad lowbit.format entry", {.file = file.path(), .tensor = t.name, .value = it->second});
    return *f;
  }
  switch (t.dtype) {
    case DType::F32: return format_by_name("f32");
    case DType::F16: return format_by_name("f16");
    case DType::BF16: return format_by_name("bf16");
    default:
      throw Error("unsupported weight dtype", {.file = file.path(), .tensor = t.name, .value = std::string(dtype_name(t.dtype))});
  }
}

}  // namespace

Model load_hf_folder(const std::string& dir) {
  Model m;
  m.source = dir;
  m.config = parse_config(dir + "/config.json");
  const ModelConfig& c = m.config;

  // name -> (file, view)
  std::map<std::string, std::pair<std::shared_ptr<SafetensorsFile>, const TensorView*>> tensors;
  auto add_file = [&](const std::string& path) {
    auto f = std::make_shared<SafetensorsFile>(path);
    for (const auto& t : f->tensors()) tensors[t.name] = {f, &t};
    m.keep_alive.push_back(f);
  };
  const std::string single = dir + "/model.safetensors", index = dir + "/model.safetensors.index.json";
  if (fs::exists(single)) {
    add_file(single);
  } else if (fs::exists(index)) {
    const json j = read_json(index);
    if (!j.contains("weight_map") || !j["weight_map"].is_object()) throw Error("missing field 'weight_map'", {.file = index});
    std::set<std::string> shards;
    for (const auto& [name, shard] : j["weight_map"].items()) {
      if (!shard.is_string() || shard.get<std::string>().find('/') != std::string::npos) {
        throw Error("bad shard file name in 'weight_map'", {.file = index, .tensor = name, .value = shard.dump()});
      }
      shards.insert(shard.get<std::string>());
    }
    for (const auto& s : shards) add_file(dir + "/" + s);
  } else {
    throw Error("no model.safetensors or model.safetensors.index.json", {.file = dir});
  }

  auto weight = [&](const std::string& hf_name, std::string gguf_name, int64_t rows, int64_t cols) {
    const auto it = tensors.find(hf_name);
    if (it == tensors.end()) throw Error("missing tensor", {.file = dir, .tensor = hf_name});
    const auto& [file, view] = it->second;
    const Format& format = format_of(*view, *file);
    std::vector<int64_t> shape = view->shape;
    if (const auto s = file->metadata().find("lowbit.shape." + hf_name); s != file->metadata().end()) {
      shape.clear();
      std::stringstream in(s->second);
      std::string d;
      while (std::getline(in, d, ',')) shape.push_back(std::stoll(d));
      int64_t r = 1;
      for (size_t k = 0; k + 1 < shape.size(); ++k) r *= shape[k];
      if (shape.empty() || view->data.size() != format.tensor_bytes(r, shape.back())) {
        throw Error("lowbit tensor size does not match its format and shape", {.file = file->path(), .tensor = hf_name, .value = s->second});
      }
    }
    const bool shape_ok = rows == 1 ? (shape == std::vector<int64_t>{cols}) : (shape == std::vector<int64_t>{rows, cols});
    if (!shape_ok) {
      std::string got;
      for (auto d : shape) got += (got.empty() ? "" : " x ") + std::to_string(d);
      throw Error("unexpected shape (expected " + std::to_string(rows) + " x " + std::to_string(cols) + ")",
                  {.file = file->path(), .tensor = hf_name, .value = got});
    }
    return Weight{std::move(gguf_name), &format, rows, cols, view->data, nullptr};
  };
  // A tied model may be saved with only one of the two names (safetensors drops shared
  // tensors): either serves as the embedding.
  const bool embed_saved = tensors.count("model.embed_tokens.weight") != 0;
  if (!embed_saved && !c.tied_output) throw Error("missing tensor", {.file = dir, .tensor = "model.embed_tokens.weight"});
  m.token_embd = weight(embed_saved ? "model.embed_tokens.weight" : "lm_head.weight", "token_embd.weight", c.vocab_size, c.dim);
  m.layers.resize(c.n_layers);
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    auto& y = m.layers[l];
    y.attn_norm = weight(p + "input_layernorm.weight", layer_tensor_name(l, "attn_norm"), 1, c.dim);
    y.attn_q = weight(p + "self_attn.q_proj.weight", layer_tensor_name(l, "attn_q"), c.dim, c.dim);
    y.attn_k = weight(p + "self_attn.k_proj.weight", layer_tensor_name(l, "attn_k"), c.kv_dim(), c.dim);
    y.attn_v = weight(p + "self_attn.v_proj.weight", layer_tensor_name(l, "attn_v"), c.kv_dim(), c.dim);
    y.attn_output = weight(p + "self_attn.o_proj.weight", layer_tensor_name(l, "attn_output"), c.dim, c.dim);
    y.ffn_norm = weight(p + "post_attention_layernorm.weight", layer_tensor_name(l, "ffn_norm"), 1, c.dim);
    y.ffn_gate = weight(p + "mlp.gate_proj.weight", layer_tensor_name(l, "ffn_gate"), c.hidden_dim, c.dim);
    y.ffn_up = weight(p + "mlp.up_proj.weight", layer_tensor_name(l, "ffn_up"), c.hidden_dim, c.dim);
    y.ffn_down = weight(p + "mlp.down_proj.weight", layer_tensor_name(l, "ffn_down"), c.dim, c.hidden_dim);
  }
  m.output_norm = weight("model.norm.weight", "output_norm.weight", 1, c.dim);
  if (c.tied_output || !tensors.count("lm_head.weight")) {
    m.config.tied_output = true;
    m.output = m.token_embd;
    m.output.name = "output.weight";
  } else {
    m.output = weight("lm_head.weight", "output.weight", c.vocab_size, c.dim);
  }

  if (fs::exists(dir + "/tokenizer.model")) {
    m.tokenizer = load_sentencepiece_tokenizer(dir + "/tokenizer.model");
  } else if (fs::exists(dir + "/tokenizer.json")) {
    m.tokenizer = load_hf_tokenizer(dir + "/tokenizer.json");
  } else if (fs::exists(dir + "/tokenizer.gguf")) {  // lowbit's vocabulary-only GGUF
    const GgufFile vocab(dir + "/tokenizer.gguf");
    m.tokenizer = tokenizer_from_gguf_vocab(read_gguf_vocab(vocab), vocab.path());
  } else {
    throw Error("missing tokenizer: no tokenizer.model, tokenizer.json or tokenizer.gguf", {.file = dir});
  }
  if (m.tokenizer->vocab_size() > c.vocab_size) {
    throw Error("tokenizer has more tokens than the model's vocab_size",
                {.file = dir, .value = std::to_string(m.tokenizer->vocab_size()) + " > " + std::to_string(c.vocab_size)});
  }
  return m;
}

}  // namespace lowbit
