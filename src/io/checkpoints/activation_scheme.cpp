// How a checkpoint's activations run (Model::activations), read from and written into
// config.json's quantization_config:
//   lowbit's own folder:  "activations": {"act": "int8", "strategy": "token"|"tensor",
//                         "threshold": 6.0}
//   bitsandbytes 8-bit:   LLM.int8() at llm_int8_threshold (int8 at 0)
//   compressed-tensors:   config_groups.group_0.input_activations: {"num_bits": 8,
//                         "type": "int"|"float", "symmetric": true, "strategy":
//                         "token"|"tensor", "dynamic": true|false} (null: float)
// Static per-tensor scales are the linears' `input_scale` tensors (read in hf_reader.cpp).
#include <algorithm>
#include <filesystem>

#include "io/checkpoints/checkpoint_layout.h"
#include "lowbit/error.h"

namespace lowbit {
namespace {

const char* strategy_of(const ActivationScheme& a) { return a.per_tensor ? "tensor" : "token"; }

bool per_tensor_strategy(const JsonObject& a, const std::string& file) {
  const std::string s = a.get_string("strategy", "token");
  if (s != "token" && s != "tensor") throw Error("activation strategy '" + s + "' (lowbit runs token and tensor)", {.file = file});
  return s == "tensor";
}

ActivationScheme read_compressed_tensors_acts(const Json& block, const std::string& file) {
  const JsonObject root(block, file, "quantization_config");
  const JsonObject groups = root.get_object("config_groups");
  if (groups.json().size() != 1) return {};  // read_ct_config refuses it with the weights
  const JsonObject g = groups.get_object(groups.json().begin().key());
  if (!g.has("input_activations")) return {};
  const JsonObject a = g.get_object("input_activations");
  const int64_t bits = a.get_int("num_bits", 8, 1, 64);
  const std::string type = a.get_string("type", "int"), strategy = a.get_string("strategy", "token");
  ActivationScheme s;
  s.act = type == "int" ? "int8" : "fp8_e4m3";
  s.per_tensor = strategy == "tensor";
  // Run what lowbit can run; for anything else the weights still load, with float inputs.
  if (bits != 8 || (type != "int" && type != "float") || !a.get_bool("symmetric", true) || (strategy != "token" && strategy != "tensor") ||
      a.json().value("dynamic", Json(!s.per_tensor)) != Json(!s.per_tensor)) {
    warn("input_activations " + a.json().dump() + " are not run by lowbit (it runs symmetric int8/fp8, dynamic per token or "
         "static per tensor): the linears' inputs stay float", {.file = file});
    return {};
  }
  return s;
}

}  // namespace

ActivationScheme read_activation_scheme(const std::string& dir) {
  const std::string config = dir + "/config.json";
  if (!std::filesystem::exists(config)) return {};
  const Json root = read_json_file(config);
  if (!root.is_object() || !root.contains("quantization_config") || !root["quantization_config"].is_object()) return {};
  const Json& block = root["quantization_config"];
  const std::string method = block.value("quant_method", "");
  if (method == "compressed-tensors") return read_compressed_tensors_acts(block, config);
  if (method == "bitsandbytes" && block.value("load_in_8bit", false)) {
    // transformers runs 8-bit bitsandbytes linears as LLM.int8() at llm_int8_threshold;
    // 0 turns the float columns off (plain int8).
    const JsonObject q(block, config, "quantization_config");
    ActivationScheme s;
    s.threshold = static_cast<float>(q.get_number("llm_int8_threshold", 6.0));
    if (s.threshold < 0) throw Error("negative llm_int8_threshold", {.file = config, .value = std::to_string(s.threshold)});
    s.act = s.threshold > 0 ? "llm_int8" : "int8";
    if (s.threshold == 0) s.threshold = 6.0f;
    return s;
  }
  if (method != "lowbit" || !block.contains("activations")) return {};
  const JsonObject a(block["activations"], config, "quantization_config.activations");
  ActivationScheme s;
  s.act = a.get_string("act");
  s.per_tensor = per_tensor_strategy(a, config);
  s.threshold = static_cast<float>(a.get_number("threshold", 6.0));
  static const char* kActs[] = {"none", "int8", "llm_int8", "fp8_e4m3", "fp8_e5m2"};
  if (std::find(std::begin(kActs), std::end(kActs), s.act) == std::end(kActs) || (s.per_tensor && s.act == "llm_int8") || !(s.threshold > 0)) {
    throw Error("unknown quantization_config.activations", {.file = config, .value = a.json().dump().substr(0, 80)});
  }
  return s;
}

Json lowbit_activation_config(const ActivationScheme& a) {
  return {{"act", a.act}, {"strategy", strategy_of(a)}, {"threshold", a.threshold}};
}

Json compressed_tensors_input_activations(const ActivationScheme& a) {
  if (a.act == "none") return nullptr;
  if (a.act != "int8" && a.act != "fp8_e4m3") {
    throw Error("compressed-tensors records int8 and fp8_e4m3 activations (write lowbit's own folder for " + a.act + ")");
  }
  return {{"num_bits", 8}, {"type", a.act == "int8" ? "int" : "float"}, {"symmetric", true}, {"strategy", strategy_of(a)},
          {"group_size", nullptr}, {"dynamic", !a.per_tensor}, {"observer", a.per_tensor ? "minmax" : "memoryless"}};
}

}  // namespace lowbit
