// GGUF -> Hugging Face tensor names and config.json (hf_names.h).
#include <fmt/format.h>
#include "io/hf_names.h"

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
      {"ffn_gate", "mlp.gate_proj"}, {"ffn_up", "mlp.up_proj"}, {"ffn_down", "mlp.down_proj"}};
  if (auto it = kTop.find(gguf_name); it != kTop.end()) return it->second;
  if (gguf_name.rfind("blk.", 0) == 0 && gguf_name.ends_with(".weight")) {
    const auto dot = gguf_name.find('.', 4);
    const std::string layer = gguf_name.substr(4, dot - 4);
    const std::string part = gguf_name.substr(dot + 1, gguf_name.size() - dot - 1 - 7);
    if (auto it = kLayer.find(part); it != kLayer.end()) return "model.layers." + layer + "." + it->second + ".weight";
  }
  throw Error("no Hugging Face name for this tensor", {.tensor = gguf_name});
}

nlohmann::ordered_json hf_config_json(const ModelConfig& c) {
  return {{"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"}, {"hidden_size", c.dim},
          {"intermediate_size", c.hidden_dim}, {"num_hidden_layers", c.n_layers}, {"num_attention_heads", c.n_heads},
          {"num_key_value_heads", c.n_kv_heads}, {"vocab_size", c.vocab_size},
          {"max_position_embeddings", c.context_length}, {"rms_norm_eps", std::stod(fmt::format("{}", c.norm_eps))}, {"rope_theta", std::stod(fmt::format("{}", c.rope_theta))},
          {"hidden_act", "silu"}, {"tie_word_embeddings", c.tied_output}, {"attention_bias", false},
          {"mlp_bias", false}, {"rope_scaling", nullptr}};
}

}  // namespace lowbit
