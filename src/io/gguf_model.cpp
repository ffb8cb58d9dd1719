// The llama architecture in GGUF: metadata keys, tokenizer keys and tensor names, read into
// a Model and written from one.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <set>

#include "lowbit/error.h"
#include "lowbit/gguf.h"
#include "lowbit/model_io.h"
#include "lowbit/output_guard.h"
#include "io/gguf_llama.h"
#include "io/unused_tensors.h"

namespace lowbit {
namespace {

int64_t get_int(const GgufFile& f, const std::string& key) {
  const GgufValue& v = f.get(key);
  if (!v.is_integer()) throw Error("key '" + key + "' is not an integer", {.file = f.path(), .value = v.describe()});
  return v.as_int();
}

double get_float(const GgufFile& f, const std::string& key, double fallback) {
  const GgufValue* v = f.find(key);
  if (v == nullptr) return fallback;
  if (v->type != GgufType::kF32 && v->type != GgufType::kF64) {
    throw Error("key '" + key + "' is not a float", {.file = f.path(), .value = v->describe()});
  }
  return v->f;
}

template <typename T, typename Get>
std::vector<T> get_array(const GgufFile& f, const std::string& key, GgufType elem, Get get) {
  const GgufValue& v = f.get(key);
  if (v.type != GgufType::kArray || v.elem_type != elem) {
    throw Error("key '" + key + "' has the wrong type", {.file = f.path(), .value = v.describe()});
  }
  std::vector<T> out;
  for (const auto& e : v.array) out.push_back(get(e));
  return out;
}

}  // namespace

GgufVocab read_gguf_vocab(const GgufFile& f) {
  GgufVocab v;
  const GgufValue& model = f.get("tokenizer.ggml.model");
  if (model.type != GgufType::kString) throw Error("'tokenizer.ggml.model' is not a string", {.file = f.path()});
  v.model = model.s;
  v.tokens = get_array<std::string>(f, "tokenizer.ggml.tokens", GgufType::kString, [](const GgufValue& e) { return e.s; });
  if (f.find("tokenizer.ggml.scores")) {
    v.scores = get_array<float>(f, "tokenizer.ggml.scores", GgufType::kF32, [](const GgufValue& e) { return static_cast<float>(e.f); });
  }
  if (f.find("tokenizer.ggml.token_type")) {
    v.token_types = get_array<int32_t>(f, "tokenizer.ggml.token_type", GgufType::kI32, [](const GgufValue& e) { return static_cast<int32_t>(e.i); });
  }
  if (f.find("tokenizer.ggml.merges")) {
    v.merges = get_array<std::string>(f, "tokenizer.ggml.merges", GgufType::kString, [](const GgufValue& e) { return e.s; });
  }
  for (size_t i = 0; i < v.scores.size(); ++i) {
    if (!std::isfinite(v.scores[i])) {
      throw Error("'tokenizer.ggml.scores' holds a non-finite score (token " + std::to_string(i) + ")",
                  {.file = f.path(), .value = std::to_string(v.scores[i])});
    }
  }
  for (const auto* arr : {&v.scores}) {
    if (!arr->empty() && arr->size() != v.tokens.size()) throw Error("'tokenizer.ggml.scores' length differs from the token count", {.file = f.path()});
  }
  if (!v.token_types.empty() && v.token_types.size() != v.tokens.size()) {
    throw Error("'tokenizer.ggml.token_type' length differs from the token count", {.file = f.path()});
  }
  auto id = [&](const char* key) -> int32_t {
    const GgufValue* x = f.find(key);
    if (x == nullptr || !x->is_integer()) return -1;
    const int64_t i = x->as_int();
    return i >= 0 && i < static_cast<int64_t>(v.tokens.size()) ? static_cast<int32_t>(i) : -1;
  };
  v.bos = id("tokenizer.ggml.bos_token_id");
  v.eos = id("tokenizer.ggml.eos_token_id");
  v.unk = id("tokenizer.ggml.unknown_token_id");
  if (const GgufValue* b = f.find("tokenizer.ggml.add_bos_token")) v.add_bos = b->u != 0;
  if (const GgufValue* k = f.find("lowbit.tokenizer.keep_space_after_bos")) v.strip_space_after_bos = k->u == 0;
  for (auto [key, field] : {std::pair{"tokenizer.ggml.pre", &v.pre}, std::pair{"lowbit.tokenizer.pipeline", &v.pipeline}}) {
    if (const GgufValue* x = f.find(key)) {
      if (x->type != GgufType::kString) throw Error(std::string("'") + key + "' is not a string", {.file = f.path()});
      *field = x->s;
    }
  }
  return v;
}

std::vector<int64_t> rope_permutation(int64_t rows, int64_t n_heads) {
  const int64_t head = rows / n_heads, half = head / 2;
  std::vector<int64_t> old_of_new(rows);
  for (int64_t h = 0; h < n_heads; ++h) {
    for (int64_t i = 0; i < half; ++i) {
      for (int64_t j = 0; j < 2; ++j) old_of_new[h * head + 2 * i + j] = h * head + j * half + i;
    }
  }
  return old_of_new;
}

namespace {

// The architectures lowbit writes and reads in GGUF, as llama.cpp names them: its
// general.architecture (the key prefix) and whether q/k rows are permuted to adjacent-pair
// RoPE (llama) or kept in Hugging Face's rotate-half order (NeoX RoPE: qwen2, qwen3).
// The keys follow what llama.cpp's converter writes for each: vocab_size and
// rope.dimension_count for llama only, and attention.key_length/value_length always for
// qwen3 (its configs carry head_dim) but for the others only when head_dim is not
// dim / heads.
struct GgufArch {
  const char* architecture;  // ModelConfig::architecture
  const char* gguf_name;
  bool permute_qk;
  bool vocab_and_rope_dims;    // writes A.vocab_size and A.rope.dimension_count
  bool always_key_length;      // writes A.attention.key_length/value_length
};

constexpr GgufArch kGgufArchs[] = {
    {"llama", "llama", true, true, false},
    {"mistral", "llama", true, true, false},  // llama.cpp's converter writes Mistral as llama
    {"qwen2", "qwen2", false, false, false},
    {"qwen3", "qwen3", false, false, true},
};

const GgufArch* gguf_arch_of(const std::string& architecture) {
  for (const GgufArch& a : kGgufArchs) {
    if (architecture == a.architecture) return &a;
  }
  return nullptr;
}

const GgufArch* gguf_arch_named(const std::string& gguf_name) {
  for (const GgufArch& a : kGgufArchs) {
    if (gguf_name == a.gguf_name) return &a;
  }
  return nullptr;
}

// RoPE scaling as llama.cpp stores it: `A.rope.scaling.type` (none, linear with
// `A.rope.scaling.factor`) and, for llama3 scaling, the divisor of each frequency in the
// F32 tensor rope_freqs.weight.
RopeScaling read_gguf_rope_scaling(const GgufFile& f, const std::string& a) {
  RopeScaling r;
  if (const GgufValue* type = f.find(a + ".rope.scaling.type")) {
    if (type->type != GgufType::kString) throw Error("key '" + a + ".rope.scaling.type' is not a string", {.file = f.path()});
    if (type->s == "linear") {
      r.type = RopeScalingType::kLinear;
      r.factor = static_cast<float>(get_float(f, a + ".rope.scaling.factor", 1.0));
    } else if (type->s == "yarn") {
      // llama.cpp: freq_scale = 1 / factor, the ramp from original_context_length and the
      // betas (32 and 1 unless given), cos/sin times attn_factor (1 + 0.1 ln factor).
      r.type = RopeScalingType::kYarn;
      r.factor = static_cast<float>(get_float(f, a + ".rope.scaling.factor", 1.0));
      r.original_context = f.find(a + ".rope.scaling.original_context_length") ? get_int(f, a + ".rope.scaling.original_context_length")
                                                                               : get_int(f, a + ".context_length");
      r.beta_fast = static_cast<float>(get_float(f, a + ".rope.scaling.yarn_beta_fast", 32.0));
      r.beta_slow = static_cast<float>(get_float(f, a + ".rope.scaling.yarn_beta_slow", 1.0));
      const double attn = get_float(f, a + ".rope.scaling.attn_factor", 1.0);
      if (attn != 1.0) r.attention_factor = static_cast<float>(attn) * yarn_attention_factor(RopeScaling{.factor = r.factor});
    } else if (type->s != "none") {
      throw Error("unsupported RoPE scaling type (lowbit runs none, linear, yarn, and llama3 factors in rope_freqs.weight)",
                  {.file = f.path(), .value = a + ".rope.scaling.type = " + type->s});
    }
  }
  const GgufTensor* t = f.find_tensor("rope_freqs.weight");
  if (t == nullptr) return r;
  if (r.type != RopeScalingType::kNone) throw Error("rope_freqs.weight together with another RoPE scaling type", {.file = f.path(), .tensor = "rope_freqs.weight"});
  if (t->type != format_by_name("f32").gguf_type || t->dims.size() != 1) {
    throw Error("rope_freqs.weight must be a vector of F32", {.file = f.path(), .tensor = "rope_freqs.weight"});
  }
  r.type = RopeScalingType::kFreqFactors;
  r.freq_factors.resize(static_cast<size_t>(t->dims[0]));
  std::memcpy(r.freq_factors.data(), t->data.data(), r.freq_factors.size() * sizeof(float));
  return r;  // ModelConfig::validate checks the count and the values
}

}  // namespace

Model load_gguf_model(const std::string& path) {
  auto file = std::make_shared<GgufFile>(path);
  const GgufFile& f = *file;
  const GgufValue& arch = f.get("general.architecture");
  const GgufArch* ga = arch.type == GgufType::kString ? gguf_arch_named(arch.s) : nullptr;
  if (ga == nullptr) throw Error("unsupported general.architecture (lowbit runs llama, qwen2 and qwen3)", {.file = path, .value = arch.describe()});
  const std::string a = ga->gguf_name;
  Model m;
  m.source = path;
  ModelConfig& c = m.config;
  c.architecture = ga->architecture;
  c.dim = get_int(f, a + ".embedding_length");
  c.hidden_dim = get_int(f, a + ".feed_forward_length");
  c.n_layers = get_int(f, a + ".block_count");
  c.n_heads = get_int(f, a + ".attention.head_count");
  c.n_kv_heads = f.find(a + ".attention.head_count_kv") ? get_int(f, a + ".attention.head_count_kv") : c.n_heads;
  c.context_length = get_int(f, a + ".context_length");
  c.norm_eps = static_cast<float>(get_float(f, a + ".attention.layer_norm_rms_epsilon", 1e-5));
  c.rope_theta = static_cast<float>(get_float(f, a + ".rope.freq_base", 10000.0));
  c.rope_style = ga->permute_qk ? RopeStyle::kAdjacentPairs : RopeStyle::kRotateHalf;
  if (f.find(a + ".attention.key_length")) {
    c.head_dim_override = get_int(f, a + ".attention.key_length");
    if (f.find(a + ".attention.value_length") && get_int(f, a + ".attention.value_length") != c.head_dim_override) {
      throw Error("attention.value_length differs from key_length (not supported)", {.file = path});
    }
    if (c.n_heads > 0 && c.dim % c.n_heads == 0 && c.head_dim_override == c.dim / c.n_heads) c.head_dim_override = 0;
  }
  c.rope_scaling = read_gguf_rope_scaling(f, a);
  if (f.find(a + ".attention.sliding_window")) c.sliding_window = get_int(f, a + ".attention.sliding_window");
  c.qk_norm = f.find_tensor("blk.0.attn_q_norm.weight") != nullptr;
  if (f.find_tensor("blk.0.attn_q.bias")) c.attention_bias = f.find_tensor("blk.0.attn_output.bias") ? BiasSet::kQkvo : BiasSet::kQkv;
  if (f.find(a + ".rope.dimension_count") && get_int(f, a + ".rope.dimension_count") != c.head_dim()) {
    throw Error("partial RoPE (rope.dimension_count != head size) is not supported", {.file = path, .value = f.get(a + ".rope.dimension_count").describe()});
  }
  const GgufTensor* embd = f.find_tensor("token_embd.weight");
  if (embd == nullptr || embd->dims.size() != 2) throw Error("missing or malformed tensor", {.file = path, .tensor = "token_embd.weight"});
  c.vocab_size = embd->dims[1];
  c.validate(path);

  std::set<std::string> used;
  auto weight = [&](const std::string& name, int64_t rows, int64_t cols) {
    used.insert(name);
    const GgufTensor* t = f.find_tensor(name);
    if (t == nullptr) throw Error("missing tensor", {.file = path, .tensor = name});
    const std::vector<int64_t> want = rows == 1 ? std::vector<int64_t>{cols} : std::vector<int64_t>{cols, rows};
    if (t->dims != want) {
      std::string got;
      for (auto d : t->dims) got += (got.empty() ? "" : " x ") + std::to_string(d);
      throw Error("unexpected dims (expected " + std::to_string(cols) + " x " + std::to_string(rows) + ")", {.file = path, .tensor = name, .value = got});
    }
    return Weight{name, find_format_by_gguf_type(t->type), rows, cols, t->data, nullptr};
  };
  m.token_embd = weight("token_embd.weight", c.vocab_size, c.dim);
  // Layers are added as their tensors are found, so a header claiming 2^31 layers costs
  // nothing before the first missing tensor is reported (a fuzzing finding).
  for (int64_t l = 0; l < c.n_layers; ++l) {
    auto& y = m.layers.emplace_back();
    y.attn_norm = weight(layer_tensor_name(l, "attn_norm"), 1, c.dim);
    y.attn_q = weight(layer_tensor_name(l, "attn_q"), c.q_dim(), c.dim);
    y.attn_k = weight(layer_tensor_name(l, "attn_k"), c.kv_dim(), c.dim);
    y.attn_v = weight(layer_tensor_name(l, "attn_v"), c.kv_dim(), c.dim);
    y.attn_output = weight(layer_tensor_name(l, "attn_output"), c.dim, c.q_dim());
    y.ffn_norm = weight(layer_tensor_name(l, "ffn_norm"), 1, c.dim);
    y.ffn_gate = weight(layer_tensor_name(l, "ffn_gate"), c.hidden_dim, c.dim);
    y.ffn_up = weight(layer_tensor_name(l, "ffn_up"), c.hidden_dim, c.dim);
    y.ffn_down = weight(layer_tensor_name(l, "ffn_down"), c.dim, c.hidden_dim);
    if (c.attention_bias != BiasSet::kNone) {
      y.attn_q_bias = weight(layer_tensor_name(l, "attn_q.bias"), 1, c.q_dim());
      y.attn_k_bias = weight(layer_tensor_name(l, "attn_k.bias"), 1, c.kv_dim());
      y.attn_v_bias = weight(layer_tensor_name(l, "attn_v.bias"), 1, c.kv_dim());
    }
    if (c.attention_bias == BiasSet::kQkvo) y.attn_output_bias = weight(layer_tensor_name(l, "attn_output.bias"), 1, c.dim);
    if (c.qk_norm) {
      y.attn_q_norm = weight(layer_tensor_name(l, "attn_q_norm"), 1, c.head_dim());
      y.attn_k_norm = weight(layer_tensor_name(l, "attn_k_norm"), 1, c.head_dim());
    }
  }
  m.output_norm = weight("output_norm.weight", 1, c.dim);
  if (f.find_tensor("output.weight")) {
    m.output = weight("output.weight", c.vocab_size, c.dim);
  } else {
    c.tied_output = true;
    m.output = m.token_embd;
    m.output.name = "output.weight";
  }
  if (c.rope_scaling.type == RopeScalingType::kFreqFactors) used.insert("rope_freqs.weight");
  std::vector<std::string> present;
  for (const auto& t : f.tensors()) present.push_back(t.name);
  check_unused_tensors(path, present, used, c.n_layers, "blk.");
  m.tokenizer = tokenizer_from_gguf_vocab(read_gguf_vocab(f), path);
  m.keep_alive.push_back(file);
  m.files = {path};
  return m;
}

int32_t llama_file_type(const Format& f) {
  static const std::pair<std::string_view, int32_t> kTypes[] = {
      {"f32", 0}, {"f16", 1}, {"q4_0", 2}, {"q4_1", 3}, {"q8_0", 7}, {"q5_0", 8}, {"q5_1", 9},
      {"q2_k", 10}, {"q3_k", 11}, {"q4_k", 14}, {"q5_k", 16}, {"q6_k", 18}, {"iq4_nl", 25},
      {"iq4_xs", 30}, {"bf16", 32}, {"tq1_0", 36}, {"tq2_0", 37}, {"mxfp4", 38}};
  for (const auto& [name, id] : kTypes) {
    if (name == f.name) return id;
  }
  return 0;
}

std::vector<GgufKeyValue> gguf_vocab_metadata(GgufVocab v, int64_t vocab_size) {
  std::vector<GgufKeyValue> kv;
  auto put = [&](std::string key, GgufValue value) { kv.push_back({std::move(key), std::move(value)}); };
  // The embedding may have more rows than the tokenizer has tokens: pad as llama.cpp does.
  for (int64_t i = static_cast<int64_t>(v.tokens.size()); i < vocab_size; ++i) {
    v.tokens.push_back("[PAD" + std::to_string(i) + "]");
    if (!v.scores.empty()) v.scores.push_back(0.0f);
    v.token_types.push_back(static_cast<int32_t>(TokenType::kUnused));
  }
  put("tokenizer.ggml.model", GgufValue::string(v.model));
  put("tokenizer.ggml.tokens", GgufValue::strings(v.tokens));
  if (!v.scores.empty()) put("tokenizer.ggml.scores", GgufValue::f32s(v.scores));
  put("tokenizer.ggml.token_type", GgufValue::i32s(v.token_types));
  // llama.cpp requires the key for byte-level vocabularies, even when it lists no merge.
  if (!v.merges.empty() || v.model == "gpt2") put("tokenizer.ggml.merges", GgufValue::strings(v.merges));
  if (!v.pre.empty()) put("tokenizer.ggml.pre", GgufValue::string(v.pre));
  if (!v.pipeline.empty()) put("lowbit.tokenizer.pipeline", GgufValue::string(v.pipeline));
  if (v.bos >= 0) put("tokenizer.ggml.bos_token_id", GgufValue::u32(static_cast<uint32_t>(v.bos)));
  if (v.eos >= 0) put("tokenizer.ggml.eos_token_id", GgufValue::u32(static_cast<uint32_t>(v.eos)));
  if (v.unk >= 0) put("tokenizer.ggml.unknown_token_id", GgufValue::u32(static_cast<uint32_t>(v.unk)));
  put("tokenizer.ggml.add_bos_token", GgufValue::boolean(v.add_bos));
  if (!v.strip_space_after_bos) put("lowbit.tokenizer.keep_space_after_bos", GgufValue::boolean(true));
  return kv;
}


RopeStyle gguf_rope_style(const ModelConfig& c) {
  const GgufArch* a = gguf_arch_of(c.architecture);
  return a != nullptr && !a->permute_qk ? RopeStyle::kRotateHalf : RopeStyle::kAdjacentPairs;
}

void require_gguf_block(const ModelConfig& c) {
  if (gguf_arch_of(c.architecture) == nullptr) throw Error("no GGUF architecture for this model", {.value = c.architecture});
}

std::vector<int64_t> qk_reorder(const ModelConfig& c, const Weight& w, RopeStyle target) {
  const int64_t heads = w.name.ends_with("attn_q.weight") || w.name.ends_with("attn_q.bias") ? c.n_heads
                      : w.name.ends_with("attn_k.weight") || w.name.ends_with("attn_k.bias") ? c.n_kv_heads : 0;
  if (heads == 0 || c.rope_style == target) return {};
  auto order = rope_permutation(w.rows == 1 ? w.cols : w.rows, heads);  // adjacent-pair r <- rotate-half order[r]
  if (target == RopeStyle::kAdjacentPairs) return order;
  std::vector<int64_t> inverse(order.size());
  for (size_t r = 0; r < order.size(); ++r) inverse[static_cast<size_t>(order[r])] = static_cast<int64_t>(r);
  return inverse;
}

std::vector<uint8_t> reordered_bytes(std::span<const uint8_t> bytes, const std::vector<int64_t>& order) {
  const uint64_t unit = bytes.size() / order.size();
  std::vector<uint8_t> out(bytes.size());
  for (size_t r = 0; r < order.size(); ++r) std::memcpy(out.data() + r * unit, bytes.data() + order[r] * unit, unit);
  return out;
}

std::vector<GgufExtraTensor> gguf_extra_tensors(const Model& model) {
  std::vector<GgufExtraTensor> out;
  const ModelConfig& c = model.config;
  const bool llama3 = c.rope_scaling.type == RopeScalingType::kLlama3 || c.rope_scaling.type == RopeScalingType::kFreqFactors;
  if (llama3) {
    const std::vector<float> factors = rope_freq_divisors(c.rope_scaling, c.head_dim(), c.rope_theta);
    GgufExtraTensor t{{"rope_freqs.weight", {static_cast<int64_t>(factors.size())}, format_by_name("f32").gguf_type}, {}};
    t.bytes.resize(factors.size() * sizeof(float));
    std::memcpy(t.bytes.data(), factors.data(), t.bytes.size());
    out.push_back(std::move(t));
  }
  return out;
}

std::vector<GgufKeyValue> llama_gguf_metadata(const Model& model, const std::string& name, int32_t file_type) {
  const ModelConfig& c = model.config;
  require_gguf_block(c);
  const GgufArch& arch = *gguf_arch_of(c.architecture);
  const std::string a = arch.gguf_name;
  std::vector<GgufKeyValue> kv;
  auto put = [&](std::string key, GgufValue v) { kv.push_back({std::move(key), std::move(v)}); };
  put("general.architecture", GgufValue::string(a));
  put("general.name", GgufValue::string(name.empty() ? std::filesystem::path(model.source).filename().string() : name));
  put("general.file_type", GgufValue::u32(static_cast<uint32_t>(file_type)));
  put("general.quantization_version", GgufValue::u32(2));
  put(a + ".context_length", GgufValue::u32(static_cast<uint32_t>(c.context_length)));
  put(a + ".embedding_length", GgufValue::u32(static_cast<uint32_t>(c.dim)));
  put(a + ".block_count", GgufValue::u32(static_cast<uint32_t>(c.n_layers)));
  put(a + ".feed_forward_length", GgufValue::u32(static_cast<uint32_t>(c.hidden_dim)));
  if (arch.vocab_and_rope_dims) put(a + ".rope.dimension_count", GgufValue::u32(static_cast<uint32_t>(c.head_dim())));
  put(a + ".attention.head_count", GgufValue::u32(static_cast<uint32_t>(c.n_heads)));
  put(a + ".attention.head_count_kv", GgufValue::u32(static_cast<uint32_t>(c.n_kv_heads)));
  put(a + ".attention.layer_norm_rms_epsilon", GgufValue::f32(c.norm_eps));
  put(a + ".rope.freq_base", GgufValue::f32(c.rope_theta));
  if (arch.vocab_and_rope_dims) put(a + ".vocab_size", GgufValue::u32(static_cast<uint32_t>(c.vocab_size)));
  const RopeScaling& r = c.rope_scaling;
  if (r.type == RopeScalingType::kLinear) {
    put(a + ".rope.scaling.type", GgufValue::string("linear"));
    put(a + ".rope.scaling.factor", GgufValue::f32(r.factor));
  }
  if (r.type == RopeScalingType::kYarn) {  // as llama.cpp's converter writes YaRN
    put(a + ".rope.scaling.type", GgufValue::string("yarn"));
    put(a + ".rope.scaling.factor", GgufValue::f32(r.factor));
    put(a + ".rope.scaling.original_context_length", GgufValue::u32(static_cast<uint32_t>(r.original_context)));
    if (r.attention_factor > 0) {  // llama.cpp multiplies its own 1 + 0.1 ln(factor) by this
      put(a + ".rope.scaling.attn_factor", GgufValue::f32(r.attention_factor / yarn_attention_factor(RopeScaling{.factor = r.factor})));
    }
    // Newer llama.cpp builds read these; older ones assume 32 and 1.
    if (r.beta_fast != 32.0f) put(a + ".rope.scaling.yarn_beta_fast", GgufValue::f32(r.beta_fast));
    if (r.beta_slow != 1.0f) put(a + ".rope.scaling.yarn_beta_slow", GgufValue::f32(r.beta_slow));
  }
  // llama.cpp's llama architecture does not read it: it runs full attention, the same
  // function for contexts up to the window.
  if (c.sliding_window > 0) put(a + ".attention.sliding_window", GgufValue::u32(static_cast<uint32_t>(c.sliding_window)));
  if (c.head_dim_override > 0 || arch.always_key_length) {  // head_dim independent of dim / heads (Qwen 3)
    put(a + ".attention.key_length", GgufValue::u32(static_cast<uint32_t>(c.head_dim())));
    put(a + ".attention.value_length", GgufValue::u32(static_cast<uint32_t>(c.head_dim())));
  }
  if (!model.tokenizer) throw Error("model has no tokenizer to write", {.file = model.source});
  for (GgufKeyValue& e : gguf_vocab_metadata(model.tokenizer->gguf_vocab(), c.vocab_size)) kv.push_back(std::move(e));
  return kv;
}

std::vector<int64_t> gguf_dims(const Weight& w) {
  return w.rows == 1 ? std::vector<int64_t>{w.cols} : std::vector<int64_t>{w.cols, w.rows};
}

void save_gguf(const Model& model, const std::string& path, const GgufWriteOptions& options) {
  refuse_overwriting_inputs(path, model.files);
  // The most common matrix format names the file type.
  std::map<const Format*, int64_t> counts;
  for (const Weight* w : model.weights()) {
    if (w->rows > 1) counts[w->format] += w->numel();
  }
  const Format* main_format = counts.empty() ? &format_by_name("f32")
      : std::max_element(counts.begin(), counts.end(), [](auto& a, auto& b) { return a.second < b.second; })->first;
  const auto kv = llama_gguf_metadata(model, options.name, options.file_type >= 0 ? options.file_type : llama_file_type(*main_format));
  std::vector<GgufTensorInfo> infos;
  const auto extras = gguf_extra_tensors(model);
  for (const GgufExtraTensor& e : extras) infos.push_back(e.info);
  for (const Weight* w : model.weights()) {
    if (w->format->gguf_type == kNotGguf) {
      throw Error("format has no GGUF type", {.file = path, .tensor = w->name, .value = std::string(w->format->name)});
    }
    infos.push_back({w->name, gguf_dims(*w), w->format->gguf_type});
  }
  GgufStreamWriter out(path, kv, infos);
  for (const GgufExtraTensor& e : extras) out.write_next(e.bytes);
  const RopeStyle target = gguf_rope_style(model.config);
  for (const Weight* w : model.weights()) {
    const auto order = qk_reorder(model.config, *w, target);
    if (order.empty()) {
      out.write_next(w->data);
    } else {
      // Rows are independent in every row-local format; a vector's elements are whole units
      // only in the float formats.
      if (w->rows == 1 && w->format->kind != FormatKind::kFloat) throw Error("a quantized vector cannot be reordered", {.tensor = w->name});
      out.write_next(reordered_bytes(w->data, order));
    }
  }
  out.commit();
}

Model convert_weights(const Model& model, const Format& format) {
  Model out = model;
  const Format& f32 = format_by_name("f32");
  auto convert = [&](Weight& w) {
    const Format& target = w.rows == 1 ? f32 : format;  // norms are stored in f32, whatever the source
    if (w.format == &target) return;
    if (!format_fits(target, w.cols)) {
      throw Error("row length does not fit " + std::string(format.name), {.tensor = w.name, .value = std::to_string(w.cols)});
    }
    const auto x = w.to_f32();
    auto bytes = std::make_shared<const std::vector<uint8_t>>(quantize_tensor(target, x, w.rows, w.cols));
    w.format = &target;
    w.data = *bytes;
    w.owned = bytes;
  };
  convert(out.token_embd);
  convert(out.output_norm);
  for (auto& l : out.layers) {
    for (Weight* w : {&l.attn_norm, &l.attn_q, &l.attn_k, &l.attn_v, &l.attn_output, &l.ffn_norm, &l.ffn_gate, &l.ffn_up,
                      &l.ffn_down}) {
      convert(*w);
    }
  }
  if (out.config.tied_output) {
    out.output = out.token_embd;
    out.output.name = "output.weight";
  } else if (model.output.data.data() == model.token_embd.data.data()) {
    out.output.format = out.token_embd.format;  // shared bytes (llama2.c): convert once
    out.output.data = out.token_embd.data;
    out.output.owned = out.token_embd.owned;
  } else {
    convert(out.output);
  }
  return out;
}

}  // namespace lowbit
