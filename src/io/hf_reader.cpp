// Hugging Face Llama folders: config.json, model.safetensors or a sharded
// model.safetensors.index.json, and tokenizer.model (SentencePiece, preferred) or
// tokenizer.json. Weights stay in the mapped safetensors files, in HF's rotate-half RoPE
// layout (the engine runs either layout; the GGUF writer permutes).
#include <cmath>
#include <filesystem>
#include <charconv>
#include <optional>
#include <set>

#include "core/json_fields.h"
#include "io/checkpoints/checkpoint_layout.h"
#include "io/hf_architectures.h"
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

namespace {

RopeScaling read_rope_scaling(const JsonObject& j) {
  RopeScaling r;
  const auto s = j.find_object("rope_scaling");
  if (!s) return r;
  const std::string type = s->has("rope_type") ? s->get_string("rope_type") : s->get_string("type", "default");
  if (type == "default") return r;
  r.factor = static_cast<float>(s->get_number("factor"));
  if (!(r.factor > 0)) s->fail("factor", "must be positive", s->find("factor"));
  if (type == "linear") {
    r.type = RopeScalingType::kLinear;
  } else if (type == "llama3") {
    r.type = RopeScalingType::kLlama3;
    r.low_freq_factor = static_cast<float>(s->get_number("low_freq_factor"));
    r.high_freq_factor = static_cast<float>(s->get_number("high_freq_factor"));
    r.original_context = s->get_int("original_max_position_embeddings", std::nullopt, 1, int64_t{1} << 31);
    if (!(r.high_freq_factor > r.low_freq_factor) || !(r.low_freq_factor > 0)) {
      s->fail("high_freq_factor", "must exceed low_freq_factor, both positive", s->find("high_freq_factor"));
    }
  } else if (type == "yarn") {
    r.type = RopeScalingType::kYarn;
    r.original_context = s->get_int("original_max_position_embeddings", j.get_int("max_position_embeddings", 2048, 1, int64_t{1} << 31), 1,
                                    int64_t{1} << 31);
    r.beta_fast = static_cast<float>(s->get_number("beta_fast", 32.0));
    r.beta_slow = static_cast<float>(s->get_number("beta_slow", 1.0));
    if (!(r.beta_fast > r.beta_slow) || !(r.beta_slow > 0)) s->fail("beta_fast", "must exceed beta_slow, both positive", s->find("beta_fast"));
    if (s->has("attention_factor")) {
      r.attention_factor = static_cast<float>(s->get_number("attention_factor"));
      if (!(r.attention_factor > 0)) s->fail("attention_factor", "must be positive", s->find("attention_factor"));
    }
    for (const char* key : {"mscale", "mscale_all_dim"}) {  // DeepSeek's variant
      if (s->has(key)) s->fail(key, "is not supported (YaRN with factor, beta_fast, beta_slow and attention_factor only)", s->find(key));
    }
    if (!s->get_bool("truncate", true)) s->fail("truncate", "false is not supported (llama.cpp rounds the ramp's ends)", s->find("truncate"));
  } else {
    s->fail(s->has("rope_type") ? "rope_type" : "type", "is not a RoPE scaling lowbit runs (linear, llama3, yarn)", s->has("rope_type") ? s->find("rope_type") : s->find("type"));
  }
  return r;
}

}  // namespace

ModelConfig read_hf_config(const std::string& path) {
  const Json root = read_json_file(path);
  const JsonObject j(root, path);
  const std::string type = j.get_string("model_type", "");
  const HfArchitecture* arch = hf_architecture_of_model_type(type);
  if (arch == nullptr) {
    throw Error("unsupported model_type (lowbit runs llama, mistral, qwen2 and qwen3)", {.file = path, .value = type});
  }
  if (j.get_bool("mlp_bias", false)) throw Error("unsupported: 'mlp_bias' is true", {.file = path});
  if (const std::string act = j.get_string("hidden_act", "silu"); act != "silu") {
    throw Error("unsupported 'hidden_act'", {.file = path, .value = act});
  }
  constexpr int64_t kMaxDim = int64_t{1} << 31;
  ModelConfig c;
  c.architecture = arch->architecture;
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
  c.rope_scaling = read_rope_scaling(j);
  c.attention_bias = arch->qkv_bias ? BiasSet::kQkv : (j.get_bool("attention_bias", false) ? BiasSet::kQkvo : BiasSet::kNone);
  c.qk_norm = arch->qk_norm;
  if (j.has("head_dim")) {
    c.head_dim_override = j.get_int("head_dim", std::nullopt, 1, kMaxDim);
    if (c.head_dim_override == c.dim / c.n_heads && c.dim % c.n_heads == 0) c.head_dim_override = 0;
  }
  if (arch->sliding_window == SlidingWindow::kAllLayers && j.has("sliding_window")) {
    const int64_t window = j.get_int("sliding_window", std::nullopt, 1, kMaxDim);
    if (window < c.context_length) c.sliding_window = window;  // else the same as full attention
  }
  if (arch->sliding_window == SlidingWindow::kQwenLayers && j.get_bool("use_sliding_window", false)) {
    j.fail("use_sliding_window", "is true (sliding-window attention on the layers from max_window_layers on is not supported)",
           j.find("use_sliding_window"));
  }
  c.validate(path);
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
  m.activations = read_activation_scheme(dir);
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
    // The biases the config declares (Qwen 2's q/k/v, attention_bias) are the model's own
    // tensors, read with the others below.
    const bool bias_declared = (c.attention_bias != BiasSet::kNone &&
                                (prefix.ends_with("q_proj") || prefix.ends_with("k_proj") || prefix.ends_with("v_proj"))) ||
                               (c.attention_bias == BiasSet::kQkvo && prefix.ends_with("o_proj"));
    for (const std::string& suffix : layout.suffixes) {
      const TensorView* t = lt.find(suffix);
      if (t == nullptr || (suffix == "bias" && bias_declared)) continue;
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
  // A block linear's static activation scale, `<prefix>.input_scale` (compressed-tensors and
  // lowbit write one f32 per linear): one positive finite value.
  auto input_scale = [&](const std::string& hf_name, Weight& w) {
    const std::string name = hf_name.substr(0, hf_name.size() - std::string(".weight").size()) + ".input_scale";
    const auto it = tensors.find(name);
    if (it == tensors.end()) return;
    const auto& [file, view] = it->second;
    if (view->numel() != 1) {
      throw Error("input_scale must hold one value (a per-tensor activation scale)", {.file = file->path(), .tensor = name, .value = std::to_string(view->numel()) + " values"});
    }
    const float v = load_float(*view, 0, file->path());
    if (!(v > 0) || !std::isfinite(v)) throw Error("input_scale must be positive and finite", {.file = file->path(), .tensor = name, .value = std::to_string(v)});
    w.input_scale = v;
    used.insert(name);
  };
  auto linear = [&](const std::string& hf_name, std::string gguf_name, int64_t rows, int64_t cols) {
    Weight w = weight(hf_name, std::move(gguf_name), rows, cols);
    input_scale(hf_name, w);
    return w;
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
    y.attn_q = linear(p + "self_attn.q_proj.weight", layer_tensor_name(l, "attn_q"), c.q_dim(), c.dim);
    y.attn_k = linear(p + "self_attn.k_proj.weight", layer_tensor_name(l, "attn_k"), c.kv_dim(), c.dim);
    y.attn_v = linear(p + "self_attn.v_proj.weight", layer_tensor_name(l, "attn_v"), c.kv_dim(), c.dim);
    y.attn_output = linear(p + "self_attn.o_proj.weight", layer_tensor_name(l, "attn_output"), c.dim, c.q_dim());
    y.ffn_norm = weight(p + "post_attention_layernorm.weight", layer_tensor_name(l, "ffn_norm"), 1, c.dim);
    y.ffn_gate = linear(p + "mlp.gate_proj.weight", layer_tensor_name(l, "ffn_gate"), c.hidden_dim, c.dim);
    y.ffn_up = linear(p + "mlp.up_proj.weight", layer_tensor_name(l, "ffn_up"), c.hidden_dim, c.dim);
    y.ffn_down = linear(p + "mlp.down_proj.weight", layer_tensor_name(l, "ffn_down"), c.dim, c.hidden_dim);
    if (c.attention_bias != BiasSet::kNone) {
      y.attn_q_bias = weight(p + "self_attn.q_proj.bias", layer_tensor_name(l, "attn_q.bias"), 1, c.q_dim());
      y.attn_k_bias = weight(p + "self_attn.k_proj.bias", layer_tensor_name(l, "attn_k.bias"), 1, c.kv_dim());
      y.attn_v_bias = weight(p + "self_attn.v_proj.bias", layer_tensor_name(l, "attn_v.bias"), 1, c.kv_dim());
    }
    if (c.attention_bias == BiasSet::kQkvo) y.attn_output_bias = weight(p + "self_attn.o_proj.bias", layer_tensor_name(l, "attn_output.bias"), 1, c.dim);
    if (c.qk_norm) {
      y.attn_q_norm = weight(p + "self_attn.q_norm.weight", layer_tensor_name(l, "attn_q_norm"), 1, c.head_dim());
      y.attn_k_norm = weight(p + "self_attn.k_norm.weight", layer_tensor_name(l, "attn_k_norm"), 1, c.head_dim());
    }
  }
  m.output_norm = weight("model.norm.weight", "output_norm.weight", 1, c.dim);
  if (c.tied_output || !tensors.count("lm_head.weight")) {
    m.config.tied_output = true;
    m.output = m.token_embd;
    m.output.name = "output.weight";
  } else {
    m.output = weight("lm_head.weight", "output.weight", c.vocab_size, c.dim);
  }

  if (m.activations.per_tensor) {
    for (const LayerWeights& y : m.layers) {
      for (const Weight* w : {&y.attn_q, &y.attn_k, &y.attn_v, &y.attn_output, &y.ffn_gate, &y.ffn_up, &y.ffn_down}) {
        if (w->input_scale == 0) throw Error("the config declares static activations, but the linear has no input_scale", {.file = dir, .tensor = w->name});
      }
    }
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
