// `lowbit quantize IN OUT.gguf (--recipe R | --format F) [--imatrix FILE] [--method gptq
// --calib FILE]`: streams the model through the recipe (and the layer-wise calibrated
// method); progress on stderr, a per-format summary at the end. W8A8 schemes
// (`--method w8a8|smoothquant|llm_int8|fp8 [--act per-token|per-tensor]`) bring their
// weight format and record their activations in the output folder.
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "lowbit/error.h"
#include "lowbit/methods.h"
#include "lowbit/progress.h"
#include "lowbit/quantize.h"

namespace lowbit::cli {

Runner register_quantize(CLI::App& app) {
  auto* sub = app.add_subcommand("quantize", "quantize a model into a GGUF file or a safetensors folder, with a recipe or one format");
  struct Options {
    QuantizeOptions q;
    std::string format, recipe;
    std::vector<std::string> method_options;
    std::string act, alpha;
    float threshold = 6.0f;
    bool act_order = false, json = false;
  };
  auto o = std::make_shared<Options>();
  sub->add_option("input", o->q.input, "HF folder, .gguf file or llama2.c checkpoint")->required();
  sub->add_option("output,-o", o->q.output, "output .gguf file, or a new folder (safetensors + config.json)")->required();
  auto* recipe = sub->add_option("--recipe,-r", o->recipe, "built-in recipe name (see `lowbit recipes`) or a JSON file");
  auto* format = sub->add_option("--format,-f", o->format, "store every matrix in this format (pure recipe)");
  recipe->excludes(format);
  sub->add_option("--imatrix", o->q.imatrix, "importance matrix (lowbit imatrix or llama.cpp's .gguf/.dat)");
  sub->add_option("--tokenizer", o->q.tokenizer, "tokenizer .bin for llama2.c checkpoints");
  sub->add_option("--name", o->q.name, "general.name");
  sub->add_option("--export", o->q.export_layout,
                  "write the folder in another library's layout: gptq, gptq_v2 (intN groups), awq (int4 groups), bnb (nf4, fp4, nf4_dq, fp4_dq, bnb_int8), "
                  "compressed-tensors (intN groups, fp8_e4m3), compressed-tensors-naive (int8 groups)");
  std::string methods;
  for (const auto& m : method_table()) methods += std::string(methods.empty() ? "" : ", ") + m.name;
  sub->add_option("--method,-m", o->q.method.name, "quantization method for the block linears: " + methods + " (default rtn)");
  sub->add_option("--method-option,-O", o->method_options, "KEY=VALUE option of the method (repeatable; gptq: damp, block, act-order, static-groups)");
  sub->add_flag("--act-order", o->act_order, "GPTQ: columns in descending Hessian diagonal (same as -O act-order=true)");
  sub->add_option("--act", o->act, "w8a8, smoothquant, llm_int8, fp8: activations per-token (dynamic, the default) or per-tensor "
                  "(static scales measured on --calib), recorded in the output folder");
  sub->add_option("--alpha", o->alpha, "smoothquant: migration strength (default 0.5; same as -O alpha=X)");
  sub->add_option("--threshold", o->threshold, "llm_int8: input columns above this magnitude stay float (default 6.0)");
  sub->add_option("--calib", o->q.calib, "calibration text for calibrated methods (gptq, awq, smoothquant) and static activation scales");
  sub->add_option("--calib-samples", o->q.calib_options.samples, "calibration samples (default 128)")->check(CLI::PositiveNumber);
  sub->add_option("--calib-len", o->q.calib_options.length, "tokens per calibration sample (default 512, or the model's context if shorter)")->check(CLI::PositiveNumber);
  sub->add_option("--seed", o->q.calib_options.seed, "seed of the calibration sample choice (default 0)");
  sub->add_flag("--json", o->json, "print the summary as JSON on stdout");
  return [o]() {
    const Method& method = method_by_name(o->q.method.name);
    const bool format_given = !o->recipe.empty() || !o->format.empty();
    if (!format_given && method.weight_format == nullptr) throw lowbit::Error("give --recipe or --format");
    if (!format_given) o->format = method.weight_format;
    o->q.recipe = o->format.empty() ? o->recipe : "pure:" + o->format;
    // W8A8 schemes record their activations; the FP8 type follows the weights'.
    if (!o->act.empty() && method.act == nullptr) throw lowbit::Error("--act goes with --method w8a8, smoothquant, llm_int8 or fp8", {.value = o->act});
    if (!o->act.empty() && o->act != "per-token" && o->act != "per-tensor") throw lowbit::Error("--act is per-token or per-tensor", {.value = o->act});
    if (method.act != nullptr && (method.act_with_any_format || !format_given || !o->act.empty())) {
      o->q.activations.act = method.act;
      if (o->q.activations.act == "fp8_e4m3" && o->format == "fp8_e5m2") o->q.activations.act = "fp8_e5m2";
      o->q.activations.per_tensor = o->act == "per-tensor";
      o->q.activations.threshold = o->threshold;
      if (o->q.activations.per_tensor && o->q.activations.act == "llm_int8") throw lowbit::Error("LLM.int8() runs per-token activations (its outlier columns are found per call)");
    }
    if (!o->alpha.empty()) o->q.method.options["alpha"] = o->alpha;
    for (const auto& kv : o->method_options) {
      const auto eq = kv.find('=');
      if (eq == std::string::npos || eq == 0) throw lowbit::Error("--method-option must be KEY=VALUE", {.value = kv});
      o->q.method.options[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    if (o->act_order) o->q.method.options["act-order"] = "true";
    // A calibrated method reports per block and group, not per tensor.
    const bool calibrated = method_by_name(o->q.method.name).needs_calibration;
    std::unique_ptr<Progress> calib_progress;
    o->q.calib_progress = [&](int64_t block, int64_t blocks, int64_t group, int64_t groups) {
      if (!calib_progress) calib_progress = std::make_unique<Progress>(o->q.method.name, blocks * groups, "groups");
      calib_progress->update(block * groups + group, fmt::format("block {}/{}", block + 1, blocks));
    };
    std::unique_ptr<Progress> progress;
    o->q.progress = [&, calibrated](int64_t i, int64_t n, uint64_t bytes, const std::string& name) {
      if (calibrated) return;  // the calibrated pass reports per block instead
      if (!progress) progress = std::make_unique<Progress>("quantize", n, "tensors");
      progress->update(i, fmt::format("{:.1f} MB f32 in{}{}", bytes / 1e6, name.empty() ? "" : ", ", name));
    };
    const QuantizeReport r = quantize_model(o->q);
    if (calib_progress) calib_progress->finish("");
    if (progress) progress->finish(fmt::format("{:.1f} MB/s", r.parameters * 4.0 / 1e6 / r.seconds));
    if (o->json) {
      nlohmann::ordered_json j{{"output", o->q.output}, {"recipe", r.recipe}, {"method", o->q.method.name},
                               {"activations", o->q.activations.act + (o->q.activations.per_tensor ? " per-tensor" : "")}, {"parameters", r.parameters},
                               {"bytes", r.bytes}, {"file_bytes", r.file_bytes}, {"bits_per_weight", r.bits_per_weight()},
                               {"seconds", r.seconds}, {"fallbacks", r.fallbacks}, {"imatrix_missing", r.imatrix_missing}};
      for (const auto& [name, t] : r.formats) {
        j["formats"][name] = {{"tensors", t.tensors}, {"parameters", t.parameters}, {"bytes", t.bytes},
                              {"bits_per_weight", 8.0 * t.bytes / t.parameters}};
      }
      fmt::print("{}\n", j.dump(2));
      return 0;
    }
    fmt::print(stderr, "\n{} -> {} with recipe {} in {:.2f} s\n", o->q.input, o->q.output, r.recipe, r.seconds);
    if (o->q.activations.act != "none") {
      fmt::print(stderr, "activations: {} {}\n", o->q.activations.act, o->q.activations.per_tensor ? "static per tensor (input_scale per linear)" : "dynamic per token");
    }
    fmt::print(stderr, "{:<10} {:>8} {:>12} {:>12} {:>8}\n", "format", "tensors", "parameters", "bytes", "bpw");
    for (const auto& [name, t] : r.formats) {
      fmt::print(stderr, "{:<10} {:>8} {:>12} {:>12} {:>8.4f}\n", name, t.tensors, t.parameters, t.bytes, 8.0 * t.bytes / t.parameters);
    }
    fmt::print(stderr, "{:<10} {:>8} {:>12} {:>12} {:>8.4f}   file {} bytes\n", "total", "", r.parameters, r.bytes,
               r.bits_per_weight(), r.file_bytes);
    for (const auto& f : r.fallbacks) fmt::print(stderr, "fallback: {}\n", f);
    for (const auto& m : r.imatrix_missing) fmt::print(stderr, "no imatrix entry (quantized without): {}\n", m);
    return 0;
  };
}

}  // namespace lowbit::cli
