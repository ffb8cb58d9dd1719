// PEFT adapter folders (lowbit/lora.h): what PEFT's save_pretrained writes for a LoRA on a
// LlamaForCausalLM, read back by PEFT, vLLM and lowbit.
#include <cstring>
#include <filesystem>
#include <map>

#include "core/json_fields.h"
#include "io/gguf_llama.h"
#include "io/hf_names.h"
#include "lowbit/atomic_file.h"
#include "lowbit/error.h"
#include "lowbit/lora.h"
#include "lowbit/safetensors.h"

namespace lowbit {
namespace {

constexpr const char* kPrefix = "base_model.model.";

// "model.layers.0.self_attn.q_proj" → "q_proj"
std::string leaf(const std::string& module) { return module.substr(module.rfind('.') + 1); }

std::vector<uint8_t> f32_bytes(const std::vector<float>& v) {
  std::vector<uint8_t> out(v.size() * 4);
  std::memcpy(out.data(), v.data(), out.size());
  return out;
}

}  // namespace

void save_peft_adapter(TrainModel& model, const std::string& dir, const std::string& base_model, const std::string& base_format) {
  namespace fs = std::filesystem;
  if (fs::exists(dir) && !(fs::is_directory(dir) && fs::is_empty(dir))) {
    throw Error("output folder exists and is not empty (lowbit does not overwrite folders)", {.file = dir});
  }
  std::vector<std::vector<uint8_t>> bytes;
  std::vector<TensorToWrite> tensors;
  std::vector<std::string> targets;
  bytes.reserve(model.params().size());
  for (const TrainTensor& t : model.params()) {
    const bool a = t.name.starts_with("lora_A."), b = t.name.starts_with("lora_B.");
    if (!a && !b) continue;
    const std::string module = t.name.substr(7);
    bytes.push_back(f32_bytes(t.value));
    tensors.push_back({kPrefix + module + (a ? ".lora_A.weight" : ".lora_B.weight"), DType::F32, {t.rows, t.cols}, bytes.back()});
    if (std::find(targets.begin(), targets.end(), leaf(module)) == targets.end()) targets.push_back(leaf(module));
  }
  if (tensors.empty()) throw Error("the model has no LoRA adapters to save", {.file = dir});
  fs::create_directories(dir);
  write_safetensors(dir + "/adapter_model.safetensors", tensors, {{"format", "pt"}});
  const nlohmann::ordered_json config{{"peft_type", "LORA"}, {"task_type", "CAUSAL_LM"}, {"base_model_name_or_path", base_model},
                                      {"r", model.lora().rank}, {"lora_alpha", model.lora().alpha}, {"lora_dropout", 0.0},
                                      {"target_modules", targets}, {"bias", "none"}, {"fan_in_fan_out", false},
                                      {"inference_mode", true}, {"use_rslora", false}, {"init_lora_weights", true},
                                      {"lowbit_base_format", base_format}};
  AtomicFile f(dir + "/adapter_config.json");
  const std::string text = config.dump(2) + "\n";
  f.write(text.data(), text.size());
  f.commit();
}

LoraAdapter load_peft_adapter(const std::string& dir) {
  LoraAdapter out;
  out.source = dir;
  const std::string config = dir + "/adapter_config.json";
  const Json root = read_json_file(config);
  const JsonObject c(root, config, "adapter_config");
  if (c.get_string("peft_type", "LORA") != "LORA") throw Error("not a LoRA adapter", {.file = config, .value = c.get_string("peft_type")});
  out.rank = c.get_int("r", std::nullopt, 0, 1 << 20);
  if (out.rank < 1) throw Error("LoRA rank must be at least 1", {.file = config, .value = std::to_string(out.rank)});
  out.alpha = static_cast<float>(c.get_number("lora_alpha", static_cast<double>(out.rank)));
  out.base_format = c.get_string("lowbit_base_format", "");
  if (c.get_bool("use_rslora", false) || c.get_bool("fan_in_fan_out", false)) {
    throw Error("rsLoRA and fan_in_fan_out adapters are not read yet", {.file = config});
  }
  const std::string file = dir + "/adapter_model.safetensors";
  const SafetensorsFile st(file);
  std::map<std::string, LoraAdapter::Pair> pairs;
  for (const TensorView& t : st.tensors()) {
    const bool a = t.name.ends_with(".lora_A.weight"), b = t.name.ends_with(".lora_B.weight");
    if (!t.name.starts_with(kPrefix) || (!a && !b)) throw Error("not a LoRA tensor of a causal LM adapter", {.file = file, .tensor = t.name});
    const std::string module = t.name.substr(std::string(kPrefix).size(), t.name.size() - std::string(kPrefix).size() - 14);
    if (t.shape.size() != 2 || (a ? t.shape[0] : t.shape[1]) != out.rank) {
      throw Error("LoRA tensor is not (rank, in) / (out, rank) for r = " + std::to_string(out.rank), {.file = file, .tensor = t.name});
    }
    LoraAdapter::Pair& p = pairs[module];
    p.module = module;
    (a ? p.a : p.b) = st.to_f32(t);
    (a ? p.cols : p.rows) = a ? t.shape[1] : t.shape[0];
  }
  for (auto& [module, p] : pairs) {
    if (p.a.empty() || p.b.empty()) throw Error("LoRA A without its B (or B without A)", {.file = file, .tensor = module});
    out.pairs.push_back(std::move(p));
  }
  if (out.pairs.empty()) throw Error("the adapter holds no LoRA tensors", {.file = file});
  return out;
}

void merge_lora(Model& model, const LoraAdapter& adapter) {
  std::map<std::string, Weight*> linears;  // HF module → the model's weight
  for (LayerWeights& l : model.layers) {
    for (Weight* w : {&l.attn_q, &l.attn_k, &l.attn_v, &l.attn_output, &l.ffn_gate, &l.ffn_up, &l.ffn_down}) {
      const std::string hf = hf_tensor_name(w->name);
      linears[hf.substr(0, hf.size() - 7)] = w;
    }
  }
  const float s = adapter.alpha / static_cast<float>(adapter.rank);
  const Format& f32 = format_by_name("f32");
  for (const LoraAdapter::Pair& p : adapter.pairs) {
    const auto it = linears.find(p.module);
    if (it == linears.end()) throw Error("the adapter's module is not a decoder linear of the model", {.file = adapter.source, .tensor = p.module});
    Weight& w = *it->second;
    if (w.rows != p.rows || w.cols != p.cols) {
      throw Error("the adapter's shape differs from the model's linear (" + std::to_string(w.rows) + " x " + std::to_string(w.cols) + ")",
                  {.file = adapter.source, .tensor = p.module, .value = std::to_string(p.rows) + " x " + std::to_string(p.cols)});
    }
    // B's rows are in Hugging Face's q/k order; the model's row r is Hugging Face's row
    // order⁻¹(r).
    const std::vector<int64_t> order = qk_reorder(model.config, w, RopeStyle::kRotateHalf);
    std::vector<float> v = w.to_f32();
    for (int64_t hr = 0; hr < w.rows; ++hr) {
      const int64_t r = order.empty() ? hr : order[hr];
      float* row = v.data() + r * w.cols;
      for (int64_t k = 0; k < adapter.rank; ++k) {
        const float bk = s * p.b[hr * adapter.rank + k];
        const float* ak = p.a.data() + k * w.cols;
        for (int64_t c = 0; c < w.cols; ++c) row[c] += bk * ak[c];
      }
    }
    auto bytes = std::make_shared<const std::vector<uint8_t>>(f32_bytes(v));
    w = Weight{w.name, &f32, w.rows, w.cols, *bytes, bytes};
  }
}

namespace {

std::vector<float> rounded(const Format& f, const std::vector<float>& v, int64_t rows, int64_t cols, const std::string& tensor) {
  if (!format_fits(f, cols)) throw Error("the base format does not fit the linear's rows", {.tensor = tensor, .value = std::string(f.name)});
  std::vector<float> out(v.size());
  f.dequantize(quantize_tensor(f, v, rows, cols).data(), rows, cols, 0, rows, out.data());
  return out;
}

}  // namespace

void round_decoder_linears(Model& model, const Format& format) {
  const Format& f32 = format_by_name("f32");
  for (LayerWeights& l : model.layers) {
    for (Weight* w : {&l.attn_q, &l.attn_k, &l.attn_v, &l.attn_output, &l.ffn_gate, &l.ffn_up, &l.ffn_down}) {
      auto bytes = std::make_shared<const std::vector<uint8_t>>(f32_bytes(rounded(format, w->to_f32(), w->rows, w->cols, w->name)));
      *w = Weight{w->name, &f32, w->rows, w->cols, *bytes, bytes};
    }
  }
}

void apply_lora_adapter(Model& model, const std::string& dir) {
  const LoraAdapter a = load_peft_adapter(dir);
  if (!a.base_format.empty() && model.layers.front().attn_q.format->kind == FormatKind::kFloat) {
    round_decoder_linears(model, format_by_name(a.base_format));
  }
  merge_lora(model, a);
  model.files.push_back(dir + "/adapter_config.json");  // what the model now depends on
  model.files.push_back(dir + "/adapter_model.safetensors");
}

}  // namespace lowbit
