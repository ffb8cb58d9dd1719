// The Hugging Face architectures lowbit reads and writes, as data: what a config's
// model_type adds to the Llama block. hf_reader.cpp reads configs with it, hf_names.cpp
// writes them.
#pragma once

#include <string>

namespace lowbit {

// How a config's `sliding_window` applies: never (Llama has none), to every layer when set
// (Mistral), or only with `use_sliding_window` and then to the layers from
// `max_window_layers` on (Qwen), which lowbit does not run.
enum class SlidingWindow { kNone, kAllLayers, kQwenLayers };

struct HfArchitecture {
  const char* model_type;
  const char* architecture;    // ModelConfig::architecture (lowbit's layout table, GGUF's general.architecture)
  const char* causal_lm;       // config.json "architectures"
  bool qkv_bias;               // q/k/v projections always have biases, no attention_bias key (Qwen 2)
  bool qk_norm;                // per-head RMSNorm of q and k before RoPE (Qwen 3)
  bool writes_head_dim;        // its configs always carry head_dim (Qwen 3)
  SlidingWindow sliding_window;
};

inline constexpr HfArchitecture kHfArchitectures[] = {
    {"llama", "llama", "LlamaForCausalLM", false, false, false, SlidingWindow::kNone},
    {"mistral", "mistral", "MistralForCausalLM", false, false, false, SlidingWindow::kAllLayers},
    {"qwen2", "qwen2", "Qwen2ForCausalLM", true, false, false, SlidingWindow::kQwenLayers},
    {"qwen3", "qwen3", "Qwen3ForCausalLM", false, true, true, SlidingWindow::kQwenLayers},
};

inline const HfArchitecture* hf_architecture_of_model_type(const std::string& model_type) {
  for (const HfArchitecture& a : kHfArchitectures) {
    if (model_type == a.model_type) return &a;
  }
  return nullptr;
}

inline const HfArchitecture* hf_architecture_of(const std::string& architecture) {
  for (const HfArchitecture& a : kHfArchitectures) {
    if (architecture == a.architecture) return &a;
  }
  return nullptr;
}

}  // namespace lowbit
