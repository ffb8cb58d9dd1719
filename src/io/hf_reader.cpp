// Hugging Face Llama folders: config.json, model.safetensors or a sharded
// model.safetensors.index.json, and tokenizer.model (SentencePiece, preferred) or
// tokenizer.json. Weights stay in the mapped safetensors files, in HF's rotate-half RoPE
// layout (the engine runs either layout; the GGUF writer permutes).
#include <filesystem>
#include <charconv>
#include <optional>
#include <set>

#include "core/json_fields.h"
#include "io/checkpoints/checkpoint_layout.h"
#include "io/unused_tensors.h"
#include "lowbit/checked_size.h"
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

}  // namespace

ModelConfig read_hf_config(const std::string& path) {
  const Json root = read_json_file(path);
  const JsonObject j(root, path);
  const std::string type = j.get_string("model_type", "");
  if (type != "llama" && type != "mistral") {
    throw Error("unsupported model_type (lowbit runs Llama-family models)", {.file = path, .value = type});
  }
  for (const char* flag : {"attention_bias", "mlp_bias"}) {
    if (j.get_bool(flag, false)) throw Error(std::string("unsupported: '") + flag + "' is true", {.file = path});
  }
  if (j.has("rope_scaling")) j.fail("rope_scaling", "is not supported", j.find("rope_scaling"));
  if (const std::string act = j.get_string("hidden_act", "silu"); act != "silu") {
    throw Error("unsupported 'hidden_act'", {.file = path, .value = act});
  }
  constexpr int64_t kMaxDim = int64_t{1} << 31;
  ModelConfig c;
  c.architecture = "llama";
  c.dim = j.get_int("hidden_size", std::nullopt, 1, kMaxDim);
  c.hidden_dim = j.get_int("intermediate_size", std::nullopt, 1, kMaxDim);
  c.n_layers = j.get_int("num_hidden_layers", std::nullopt, 1, kMaxDim);
  c.n_heads = j.get_int("num_attention_heads", std::nullopt, 1, kMaxDim);
  c.n_kv_heads = j.get_int("num_key_value_heads", c.n_heads, 1, kMaxDim);
  c.vocab_size = j.get_int("vocab_size", std::nullopt, 1, kMaxDim);
  c.context_length = j.get_int("max_position_embeddings", 2048, 1, kMaxDim);
  c.norm_eps = static_cast<float>(j.get_number("rms_norm_eps", 1e-6));
  c.rope_theta = static_cast<float>(j.get_number("rope_theta", 10000.0));
  c.tied_output = j.get_bool("tie_word_embeddings", false);
  c.rope_style = RopeStyle::kRotateHalf;
  c.validate(path);
  if (j.has("head_dim") && j.get_int("head_dim") != c.head_dim()) {
    j.fail("head_dim", "differs from hidden_size / num_attention_heads (unsupported)", j.find("head_dim"));
  }
  return c;
}

namespace {

// "rows,cols" of lowbit's shape metadata, each a positive integer.
std::vector<int64_t> parse_shape_metadata(const std::string& text, const std::string& file, const std::string& tensor) {
  std::vector<int64_t> shape;
  std::stringstream in(text);
  std::string d;
  while (std::getline(in, d, ',')) {
    int64_t v = 0;
    const auto [end, ec] = std::from_chars(d.data(), d.data() + d.size(), v);
    if (ec != std::errc() || end != d.data() + d.size() || v <= 0) {
      throw Error("malformed lowbit.shape entry", {.file = file, .tensor = tensor, .value = text.substr(0, 80)});
    }
    shape.push_back(v);
  }
  if (shape.empty() || shape.size() > 4) throw Error("malformed lowbit.shape entry", {.file = file, .tensor = tensor, .value = text.substr(0, 80)});
  return shape;
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
  m.config = read_hf_config(dir + "/config.json");
  m.files.push_back(dir + "/config.json");
  const ModelConfig& c = m.config;

  // name -> (file, view)
  std::map<std::string, std::pair<std::shared_ptr<SafetensorsFile>, const TensorView*>> tensors;
  auto add_file = [&](const std::string& path) {
    auto f = std::make_shared<SafetensorsFile>(path);
    for (const auto& t : f->tensors()) tensors[t.name] = {f, &t};
    m.keep_alive.push_back(f);
    m.files.push_back(path);
  };
  const std::string single = dir + "/model.safetensors", index = dir + "/model.safetensors.index.json";
  if (fs::exists(single)) {
    add_file(single);
  } else if (fs::exists(index)) {
    const Json root = read_json_file(index);
    m.files.push_back(index);
    const JsonObject map = JsonObject(root, index).get_object("weight_map");
    std::set<std::string> shards;
    for (const auto& [name, shard] : map.json().items()) {
      if (!shard.is_string() || shard.get<std::string>().empty() || shard.get<std::string>().find('/') != std::string::npos) {
        throw Error("bad shard file name in 'weight_map'", {.file = index, .tensor = name, .value = json_excerpt(shard)});
      }
      shards.insert(shard.get<std::string>());
    }
    for (const auto& s : shards) add_file(dir + "/" + s);
  } else {
    throw Error("no model.safetensors or model.safetensors.index.json", {.file = dir});
  }

  std::set<std::string> used;
  // A quantized checkpoint (GPTQ, AWQ, bitsandbytes, compressed-tensors, FP8): its linears
  // go through the layout's reader, unless a linear was kept in float (lm_head, ignored
  // modules), which reads as usual.
  const QuantConfig quant = read_quant_config(dir);
  if (!quant.method.empty()) m.files.push_back(quant.file);
  m.quant_method = quant.method;
  auto quantized_linear = [&](const std::string& hf_name, std::string gguf_name, int64_t rows, int64_t cols) -> std::optional<Weight> {
    if (quant.method.empty() || !hf_name.ends_with(".weight")) return std::nullopt;
    const auto plain = tensors.find(hf_name);
    if (plain != tensors.end() && dtype_is_float(plain->second.second->dtype) && plain->second.second->dtype != DType::F8_E4M3 &&
        plain->second.second->dtype != DType::F8_E5M2) {
      return std::nullopt;
    }
    const std::string prefix = hf_name.substr(0, hf_name.size() - std::string(".weight").size());
    const CheckpointLayout& layout = checkpoint_layout_for(quant);
    std::string file = dir;
    const LinearTensors lt(prefix, dir, [&](const std::string& n) -> const TensorView* {
      const auto it = tensors.find(n);
      if (it == tensors.end()) return nullptr;
      file = it->second.first->path();
      return it->second.second;
    });
    ImportedWeight iw = layout.read(quant, lt, rows, cols);
    for (const std::string& suffix : layout.suffixes) {
      const TensorView* t = lt.find(suffix);
      if (t == nullptr) continue;
      if (suffix == "bias") {  // exporters save zero biases for bias-free models; others are not run
        for (uint8_t b : t->data) {
          if (b != 0) throw Error("the linear has a non-zero bias (lowbit runs bias-free Llama linears)", {.file = file, .tensor = lt.name("bias")});
        }
      }
      used.insert(lt.name(suffix));
    }
    auto owned = std::make_shared<const std::vector<uint8_t>>(std::move(iw.bytes));
    return Weight{std::move(gguf_name), iw.format, rows, cols, *owned, owned};
  };
  auto weight = [&](const std::string& hf_name, std::string gguf_name, int64_t rows, int64_t cols) {
    if (rows > 1) {
      if (auto q = quantized_linear(hf_name, gguf_name, rows, cols)) return std::move(*q);
    }
    const auto it = tensors.find(hf_name);
    if (it == tensors.end()) throw Error("missing tensor", {.file = dir, .tensor = hf_name});
    const auto& [file, view] = it->second;
    const Format& format = format_of(*view, *file);
    std::vector<int64_t> shape = view->shape;
    if (const auto s = file->metadata().find("lowbit.shape." + hf_name); s != file->metadata().end()) {
      shape = parse_shape_metadata(s->second, file->path(), hf_name);
      const int64_t r = checked_numel(std::span(shape).first(shape.size() - 1), "tensor rows");
      if (!format_fits(format, shape.back()) || view->data.size() != format.tensor_bytes(r, shape.back())) {
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
    used.insert(hf_name);
    return Weight{std::move(gguf_name), &format, rows, cols, view->data, nullptr};
  };
  // A tied model may be saved with only one of the two names (safetensors drops shared
  // tensors): either serves as the embedding.
  const bool embed_saved = tensors.count("model.embed_tokens.weight") != 0;
  if (!embed_saved && !c.tied_output) throw Error("missing tensor", {.file = dir, .tensor = "model.embed_tokens.weight"});
  m.token_embd = weight(embed_saved ? "model.embed_tokens.weight" : "lm_head.weight", "token_embd.weight", c.vocab_size, c.dim);
  // Layers are added as their tensors are found, so a header claiming 2^31 layers costs
  // nothing before the first missing tensor is reported (a fuzzing finding).
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    auto& y = m.layers.emplace_back();
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

  if (c.tied_output) used.insert("lm_head.weight");  // a tied copy, saved anyway by some exporters
  std::vector<std::string> present;
  for (const auto& [name, entry] : tensors) present.push_back(name);
  check_unused_tensors(dir, present, used, c.n_layers, "model.layers.");

  if (fs::exists(dir + "/tokenizer.model")) {
    m.files.push_back(dir + "/tokenizer.model");
    m.tokenizer = load_sentencepiece_tokenizer(dir + "/tokenizer.model");
  } else if (fs::exists(dir + "/tokenizer.json")) {
    m.files.push_back(dir + "/tokenizer.json");
    m.tokenizer = load_hf_tokenizer(dir + "/tokenizer.json");
  } else if (fs::exists(dir + "/tokenizer.gguf")) {  // lowbit's vocabulary-only GGUF
    m.files.push_back(dir + "/tokenizer.gguf");
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
