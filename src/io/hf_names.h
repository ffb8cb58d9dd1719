// Hugging Face Llama tensor names <-> GGUF names, and config.json from a ModelConfig.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "lowbit/model.h"

namespace lowbit {

std::string hf_tensor_name(const std::string& gguf_name);  // "blk.0.attn_q.weight" -> "model.layers.0.self_attn.q_proj.weight"
nlohmann::ordered_json hf_config_json(const ModelConfig& c);

}  // namespace lowbit
