// The layout table (see lowbit/arch.h). Llama: input_layernorm feeds q, k, v; v's output
// (per head, after attention) feeds o; post_attention_layernorm feeds gate and up; the
// SwiGLU of gate and up feeds down, scaled through up's output rows.
#include "lowbit/arch.h"

#include "lowbit/error.h"

namespace lowbit {
namespace {

// The Llama block's groups; Mistral, Qwen 2/2.5 and Qwen 3 share them (biases and q/k
// norms sit on the projections' outputs, after the groups' inputs).
std::vector<LinearGroup> llama_groups() {
  return {{"attn_in",
           {{"q", &LayerWeights::attn_q, false}, {"k", &LayerWeights::attn_k, false}, {"v", &LayerWeights::attn_v, true}},
           &LayerWeights::attn_norm, nullptr, InspectedModule::kAttention},
          {"attn_out_in", {{"o", &LayerWeights::attn_output, true}}, nullptr, &LayerWeights::attn_v, InspectedModule::kLinear,
           &LayerWeights::attn_v_bias},
          {"ffn_in",
           {{"gate", &LayerWeights::ffn_gate, true}, {"up", &LayerWeights::ffn_up, true}},
           &LayerWeights::ffn_norm, nullptr, InspectedModule::kMlp},
          {"ffn_down_in", {{"down", &LayerWeights::ffn_down, true}}, nullptr, &LayerWeights::ffn_up, InspectedModule::kLinear}};
}

const std::vector<ArchLayout>& layouts() {
  static const std::vector<ArchLayout> t{
      {"llama", llama_groups()},
      {"mistral", llama_groups()},
      {"qwen2", llama_groups()},
      {"qwen3", llama_groups()},
  };
  return t;
}

}  // namespace

const ArchLayout& arch_layout(const std::string& architecture) {
  for (const auto& l : layouts()) {
    if (architecture == l.architecture) return l;
  }
  throw Error("no layer layout for this architecture", {.value = architecture});
}

}  // namespace lowbit
