// GGUF -> Hugging Face tensor names and config.json (hf_names.h).
#include <fmt/format.h>
#include "io/hf_names.h"

#include "io/hf_architectures.h"

#include <map>

#include "lowbit/error.h"

namespace lowbit {

std::string hf_tensor_name(const std::string& gguf_name) {
  static const std::map<std::string, std::string> kTop{{"token_embd.weight", "model.embed_tokens.weight"},
                                                       {"output_norm.weight", "model.norm.weight"},
                                                       {"output.weight", "lm_head.weight"}};
  static const std::map<std::string, std::string> kLayer{
      {"attn_norm", "input_layernorm"}, {"attn_q", "self_attn.q_proj"}, {"attn_k", "self_attn.k_proj"},
      {"attn_v", "self_attn.v_proj"}, {"attn_output", "self_attn.o_proj"}, {"ffn_norm", "post_attention_layernorm"},
      {"ffn_gate", "mlp.gate_proj"}, {"ffn_up", "mlp.up_proj"}, {"ffn_down", "mlp.down_proj"},
      {"attn_q_norm", "self_attn.q_norm"}, {"attn_k_norm", "self_attn.k_norm"}};
  if (auto it = kTop.find(gguf_name); it != kTop.end()) return it->second;
  // "blk.L.PART.weight" or "blk.L.PART.bias"
  const auto last = gguf_name.rfind('.');
  const std::string suffix = last == std::string::npos ? "" : gguf_name.substr(last);
  if (gguf_name.rfind("blk.", 0) == 0 && (suffix == ".weight" || suffix == ".bias")) {
    const auto dot = gguf_name.find('.', 4);
    const std::string layer = gguf_name.substr(4, dot - 4);
    const std::string part = gguf_name.substr(dot + 1, last - dot - 1);
    if (auto it = kLayer.find(part); it != kLayer.end()) return "model.layers." + layer + "." + it->second + suffix;
  }
  throw Error("no Hugging Face name for this tensor", {.tensor = gguf_name});
}

namespace {

double shortest(float v) { return std::stod(fmt::format("{}", v)); }  // 1e-05, not 9.99999974737875e-06

}  // namespace

nlohmann::ordered_json hf_config_json(const ModelConfig& c) {
  const HfArchitecture* arch = hf_architecture_of(c.architecture);
  if (arch == nullptr) throw Error("no Hugging Face config for this architecture", {.value = c.architecture});
  nlohmann::ordered_json j = {{"architectures", {arch->causal_lm}}, {"model_type", arch->model_type}, {"hidden_size", c.dim},
                              {"intermediate_size", c.hidden_dim}, {"num_hidden_layers", c.n_layers}, {"num_attention_heads", c.n_heads},
                              {"num_key_value_heads", c.n_kv_heads}, {"vocab_size", c.vocab_size},
                              {"max_position_embeddings", c.context_length}, {"rms_norm_eps", shortest(c.norm_eps)},
                              {"rope_theta", shortest(c.rope_theta)}, {"hidden_act", "silu"}, {"tie_word_embeddings", c.tied_output}};
  if (c.head_dim_override > 0 || arch->writes_head_dim) j["head_dim"] = c.head_dim();
  if (arch->qkv_bias) {
    if (c.attention_bias != BiasSet::kQkv) throw Error("a " + std::string(arch->model_type) + " config has q/k/v biases and no o bias", {.value = c.architecture});
  } else {
    if (c.attention_bias == BiasSet::kQkv) throw Error("biases on q/k/v without o have no " + std::string(arch->model_type) + " config", {.value = c.architecture});
    j["attention_bias"] = c.attention_bias == BiasSet::kQkvo;
  }
  if (c.qk_norm != arch->qk_norm) throw Error("q/k norms do not match model_type " + std::string(arch->model_type), {.value = c.architecture});
  if (c.architecture == "llama") j["mlp_bias"] = false;
  const RopeScaling& r = c.rope_scaling;
  switch (r.type) {
    case RopeScalingType::kNone: j["rope_scaling"] = nullptr; break;
    case RopeScalingType::kLinear: j["rope_scaling"] = {{"rope_type", "linear"}, {"factor", shortest(r.factor)}}; break;
    case RopeScalingType::kLlama3:
      j["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", shortest(r.factor)}, {"low_freq_factor", shortest(r.low_freq_factor)},
                           {"high_freq_factor", shortest(r.high_freq_factor)}, {"original_max_position_embeddings", r.original_context}};
      break;
    case RopeScalingType::kYarn:
      j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", shortest(r.factor)}, {"original_max_position_embeddings", r.original_context},
                           {"beta_fast", shortest(r.beta_fast)}, {"beta_slow", shortest(r.beta_slow)}};
      if (r.attention_factor > 0) j["rope_scaling"]["attention_factor"] = shortest(r.attention_factor);
      break;
    case RopeScalingType::kFreqFactors:
      throw Error("RoPE frequency factors (a GGUF file's rope_freqs.weight) have no Hugging Face rope_scaling form; convert the original folder",
                  {.tensor = "rope_freqs.weight"});
  }
  if (arch->sliding_window == SlidingWindow::kAllLayers) {
    j["sliding_window"] = c.sliding_window > 0 ? nlohmann::ordered_json(c.sliding_window) : nlohmann::ordered_json(nullptr);
  } else if (arch->sliding_window == SlidingWindow::kQwenLayers) {
    j["use_sliding_window"] = false;
  } else if (c.sliding_window > 0) {
    throw Error("a sliding window has no " + std::string(arch->model_type) + " config", {.value = c.architecture});
  }
  return j;
}

}  // namespace lowbit
