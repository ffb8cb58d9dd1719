// The method table (see lowbit/methods.h). Each calibrated method lives in its own file
// and contributes a factory.
#include <cmath>
#include <string>

#include "lowbit/error.h"
#include "lowbit/methods.h"
#include "quant/methods/awq_method.h"
#include "quant/methods/gptq_method.h"
#include "quant/methods/smoothquant_method.h"

namespace lowbit {

const std::vector<Method>& method_table() {
  static const std::vector<Method> t{
      {"rtn", "round to nearest: each tensor quantized on its own by the format's reference quantizer (with the imatrix when given)",
       false, {}, nullptr},
      {"gptq",
       "GPTQ (Frantar et al. 2022): layer-wise, true-sequential; rounds column by column and spreads the error over the "
       "columns left, weighted by the inverse Hessian of the calibration inputs",
       true,
       {{"damp", "0.01", "damping, a fraction of mean(diag H); raised by 0.01 while H is singular"},
        {"block", "128", "lazy-batch width (columns)"},
        {"act-order", "false", "quantize columns in descending diag(H) (desc_act)"},
        {"static-groups", "false", "fit every group on the original weights first"}},
       &make_gptq_method},
      {"awq",
       "AWQ (Lin et al. 2023): per group of linears sharing an input, scales from the activations (grid search on the "
       "module's output), folded into the norm or linear feeding them; then a clip search; then RTN or GPTQ",
       true,
       {{"grid", "20", "points of the scale-exponent grid"},
        {"duo", "true", "AutoAWQ's duo scaling (its default): divide by mean|w|^(1-r) too"},
        {"clip", "true", "search a clipping range per row and block"},
        {"clip-qk", "true", "clip q and k too (llm-awq skips them)"},
        {"gptq", "false", "round with GPTQ after scaling (AWQ + GPTQ)"},
        {"damp", "0.01", "GPTQ damping when gptq=true"},
        {"act-order", "false", "GPTQ act-order when gptq=true"}},
       &make_awq_method},
      {"smoothquant",
       "SmoothQuant (Xiao et al. 2022): per input channel of the linears fed by a norm, s = max|x|^alpha / max|w|^(1-alpha) "
       "from the calibration activations, folded into the norm and the linears (the float model is unchanged); then RTN. "
       "Without --format: int8 weights per channel and int8 activations (W8A8)",
       true,
       {{"alpha", "0.5", "migration strength (llm-compressor uses 0.8)"},
        {"linear-fed", "true", "also smooth the inputs of down_proj (into up's rows) and o_proj (into v's, ungrouped heads); false: smooth.py's norm-fed groups only"}},
       &make_smoothquant_method,
       false,
       "int8_pc_sym",
       "int8",
       false},
      {"w8a8",
       "W8A8: int8 weights per output channel (RTN) and int8 activations, per token or static per tensor (--act); the "
       "linears run as int8 GEMMs",
       false, {}, nullptr, false, "int8_pc_sym", "int8"},
      {"llm_int8",
       "LLM.int8() (Dettmers et al. 2022): int8 vector-wise weights (bitsandbytes' layout) and int8 activations per "
       "token; input columns above --threshold (6.0) in any token stay float",
       false, {}, nullptr, false, "bnb_int8", "llm_int8"},
      {"fp8",
       "FP8 W8A8: E4M3 weights with an fp32 scale per output channel and E4M3 activations per token (vLLM's fp8 "
       "dynamic), or static per tensor (--act per-tensor); --format fp8_e5m2 for E5M2",
       false, {}, nullptr, false, "fp8_e4m3", "fp8_e4m3"},
  };
  return t;
}

const Method& method_by_name(const std::string& name) {
  std::string known;
  for (const auto& m : method_table()) {
    if (name == m.name) return m;
    known += (known.empty() ? "" : ", ") + std::string(m.name);
  }
  throw Error("unknown method (known: " + known + ")", {.value = name.substr(0, 40)});
}

namespace {

const MethodOption& option_row(const MethodConfig& c, const std::string& option) {
  const Method& m = method_by_name(c.name);
  for (const auto& o : m.options) {
    if (option == o.name) return o;
  }
  std::string known;
  for (const auto& o : m.options) known += (known.empty() ? "" : ", ") + std::string(o.name);
  throw Error("method " + c.name + " has no option '" + option.substr(0, 40) + "'" + (known.empty() ? "" : " (options: " + known + ")"));
}

std::string option_value(const MethodConfig& c, const std::string& option) {
  const MethodOption& row = option_row(c, option);
  const auto it = c.options.find(option);
  return it == c.options.end() ? row.default_value : it->second;
}

}  // namespace

double method_option_number(const MethodConfig& c, const std::string& option) {
  const std::string v = option_value(c, option);
  try {
    size_t used = 0;
    const double d = std::stod(v, &used);
    if (used == v.size() && std::isfinite(d)) return d;
  } catch (const std::exception&) {
  }
  throw Error("option '" + option + "' of " + c.name + " must be a number", {.value = v.substr(0, 40)});
}

bool method_option_flag(const MethodConfig& c, const std::string& option) {
  const std::string v = option_value(c, option);
  if (v == "true" || v == "1") return true;
  if (v == "false" || v == "0") return false;
  throw Error("option '" + option + "' of " + c.name + " must be true or false", {.value = v.substr(0, 40)});
}

void check_method_config(const MethodConfig& c) {
  method_by_name(c.name);  // throws for an unknown method
  for (const auto& [k, v] : c.options) {
    const MethodOption& row = option_row(c, k);
    const std::string def = row.default_value;
    if (def == "true" || def == "false") {
      method_option_flag(c, k);
    } else {
      method_option_number(c, k);
    }
  }
}

}  // namespace lowbit
