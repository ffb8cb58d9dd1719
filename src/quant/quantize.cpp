// The streaming quantize pipeline (quantize.h).
#include "lowbit/quantize.h"

#include <chrono>
#include <filesystem>

#include "io/gguf_llama.h"
#include "lowbit/error.h"
#include "lowbit/gguf.h"
#include "lowbit/imatrix.h"
#include "lowbit/mapped_file.h"
#include "lowbit/model_io.h"

namespace lowbit {
namespace {

int64_t layer_of(const std::string& name) {
  if (name.rfind("blk.", 0) != 0) return -1;
  return std::stoll(name.substr(4, name.find('.', 4) - 4));
}

// llama_ftype of a recipe (llama.cpp's enum), for general.file_type.
int32_t file_type_of_recipe(const std::string& recipe, const Format* dominant) {
  static const std::map<std::string, int32_t> kTypes{
      {"f16", 1}, {"q8_0", 7}, {"q6_k", 18}, {"q5_k_m", 17}, {"q5_k_s", 16}, {"q4_k_m", 15}, {"q4_k_m-f16", 15},
      {"q4_k_s", 14}, {"q3_k_m", 12}, {"q3_k_s", 11}, {"q2_k", 10}, {"q2_k_s", 21}, {"bf16", 32}};
  static const std::map<std::string, int32_t> kPure{
      {"f32", 0}, {"f16", 1}, {"q4_0", 2}, {"q4_1", 3}, {"q8_0", 7}, {"q5_0", 8}, {"q5_1", 9}, {"q2_k", 10},
      {"q3_k", 11}, {"q4_k", 14}, {"q5_k", 16}, {"q6_k", 18}, {"iq4_nl", 25}, {"iq4_xs", 30}, {"bf16", 32},
      {"tq1_0", 36}, {"tq2_0", 37}, {"mxfp4", 38}};
  if (auto it = kTypes.find(recipe); it != kTypes.end()) return it->second;
  if (auto it = kPure.find(std::string(dominant->name)); it != kPure.end()) return it->second;
  return 0;
}

struct Planned {
  const Weight* weight;
  const Format* format;
  int64_t layer;
};

}  // namespace

QuantizeReport quantize_model(const QuantizeOptions& o) {
  const auto t0 = std::chrono::steady_clock::now();
  if (!o.output.ends_with(".gguf")) throw Error("output must be a .gguf file", {.file = o.output});
  if (std::filesystem::exists(o.input) && std::filesystem::exists(o.output) &&
      std::filesystem::equivalent(o.input, o.output)) {
    throw Error("output would overwrite the input", {.file = o.output});
  }
  const Model model = load_model(o.input, {.tokenizer_path = o.tokenizer});
  const Recipe recipe = load_recipe(o.recipe);
  ImportanceMatrix imatrix;
  if (!o.imatrix.empty()) imatrix = ImportanceMatrix::load(o.imatrix);
  QuantizeReport report;
  report.recipe = recipe.name;

  // Plan every tensor's format first: the GGUF header needs all sizes up front.
  std::vector<Planned> plan;
  std::map<const Format*, int64_t> params_by_format;
  const Format& f32 = format_by_name("f32");
  for (const Weight* w : model.weights()) {
    Planned p{w, &f32, layer_of(w->name)};
    if (w->rows > 1) {
      // A tied embedding is also the output matrix: it follows the output's rules (as in
      // llama.cpp, where token_embd then gets output's type).
      const bool tied_embedding = model.config.tied_output && w->name == "token_embd.weight";
      const TensorChoice c = choose_format(recipe, tied_embedding ? "output.weight" : w->name, p.layer,
                                           model.config.n_layers, w->cols);
      p.format = c.format ? c.format : w->format;
      if (p.format->gguf_type == kNotGguf) {
        throw Error("format has no GGUF type", {.tensor = w->name, .value = std::string(p.format->name)});
      }
      if (c.fell_back) report.fallbacks.push_back(w->name + ": " + c.reason);
      params_by_format[p.format] += w->numel();
    }
    plan.push_back(p);
  }
  const Format* dominant = params_by_format.empty() ? &f32
      : std::max_element(params_by_format.begin(), params_by_format.end(), [](auto& a, auto& b) { return a.second < b.second; })->first;
  std::vector<GgufTensorInfo> infos;
  for (const auto& p : plan) infos.push_back({p.weight->name, gguf_dims(*p.weight), p.format->gguf_type});
  GgufStreamWriter out(o.output, llama_gguf_metadata(model, o.name, file_type_of_recipe(recipe.name, dominant)), infos);

  uint64_t f32_bytes_done = 0;
  for (size_t i = 0; i < plan.size(); ++i) {
    const Planned& p = plan[i];
    const Weight& w = *p.weight;
    if (o.progress) o.progress(static_cast<int64_t>(i), static_cast<int64_t>(plan.size()), f32_bytes_done, w.name);
    std::vector<uint8_t> bytes;
    if (p.format == w.format && gguf_rope_heads(model, w) == 0) {
      bytes.assign(w.data.begin(), w.data.end());  // already in the target format
    } else {
      std::vector<float> x = w.to_f32();
      if (const int64_t heads = gguf_rope_heads(model, w)) {
        const auto order = rope_permutation(w.rows, heads);
        std::vector<float> permuted(x.size());
        for (int64_t r = 0; r < w.rows; ++r) {
          std::copy_n(x.begin() + order[r] * w.cols, w.cols, permuted.begin() + r * w.cols);
        }
        x.swap(permuted);
      }
      std::vector<float> importance;
      if (p.format->uses_importance && !o.imatrix.empty()) {
        importance = imatrix.weights_for(w.name, w.cols);
        if (importance.empty()) report.imatrix_missing.push_back(w.name);
      }
      try {
        bytes = quantize_tensor(*p.format, x, w.rows, w.cols, importance.empty() ? nullptr : importance.data());
      } catch (const Error& e) {
        throw e.with_tensor(w.name).with_file(o.input);
      }
    }
    out.write_next(bytes);
    if (!w.owned) release_pages(w.data);
    f32_bytes_done += static_cast<uint64_t>(w.numel()) * 4;
    auto& total = report.formats[std::string(p.format->name)];
    total.tensors += 1;
    total.parameters += w.numel();
    total.bytes += bytes.size();
    report.parameters += w.numel();
    report.bytes += bytes.size();
  }
  out.commit();
  if (o.progress) o.progress(static_cast<int64_t>(plan.size()), static_cast<int64_t>(plan.size()), f32_bytes_done, "");
  report.file_bytes = std::filesystem::file_size(o.output);
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return report;
}

}  // namespace lowbit
