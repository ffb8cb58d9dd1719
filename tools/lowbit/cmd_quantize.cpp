// `lowbit quantize IN OUT.gguf (--recipe R | --format F) [--imatrix FILE] [--method gptq
// --calib FILE]`: streams the model through the recipe (and the layer-wise calibrated
// method); progress on stderr, a per-format summary at the end. W8A8 schemes
// (`--method w8a8|smoothquant|llm_int8|fp8 [--act per-token|per-tensor]`) bring their
// weight format and record their activations in the output folder.
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "lowbit/cluster.h"
#include "lowbit/error.h"
#include "lowbit/methods.h"
#include "lowbit/mix.h"
#include "lowbit/sensitivity.h"
#include "lowbit/progress.h"
#include "lowbit/quantize.h"

namespace lowbit::cli {
namespace {

// "2100000", "2.1GB", "900MiB", "512k" → bytes (GB = 10^9, GiB = 2^30).
uint64_t parse_size(const std::string& text) {
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception&) {
    throw lowbit::Error("a size is a number with an optional unit (B, KB, MB, GB, KiB, MiB, GiB)", {.value = text});
  }
  std::string unit = text.substr(used);
  for (char& ch : unit) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  static const std::pair<const char*, double> kUnits[] = {{"", 1}, {"b", 1}, {"k", 1e3}, {"kb", 1e3}, {"m", 1e6}, {"mb", 1e6}, {"g", 1e9}, {"gb", 1e9},
                                                          {"kib", 1024.0}, {"mib", 1048576.0}, {"gib", 1073741824.0}};
  for (const auto& [name, scale] : kUnits) {
    if (unit == name && v > 0) return static_cast<uint64_t>(v * scale);
  }
  throw lowbit::Error("a size is a positive number with an optional unit (B, KB, MB, GB, KiB, MiB, GiB)", {.value = text});
}

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  for (size_t at = 0; at <= s.size();) {
    const size_t comma = std::min(s.find(',', at), s.size());
    if (comma > at) out.push_back(s.substr(at, comma - at));
    at = comma + 1;
  }
  return out;
}

}  // namespace

Runner register_quantize(CLI::App& app) {
  auto* sub = app.add_subcommand("quantize", "quantize a model into a GGUF file or a safetensors folder, with a recipe or one format");
  struct Options {
    QuantizeOptions q;
    std::string format, recipe;
    std::vector<std::string> method_options;
    std::string act, alpha, target_size, emit_recipe, formats = "q2_k,q3_k,q4_k,q5_k,q6_k,q8_0,iq4_xs";
    CalibrationOptions sens_calib{.samples = 8, .length = 256, .seed = 0};
    float threshold = 6.0f;
    bool act_order = false, json = false;
  };
  auto o = std::make_shared<Options>();
  sub->add_option("input", o->q.input, "HF folder, .gguf file or llama2.c checkpoint")->required();
  sub->add_option("output,-o", o->q.output, "output .gguf file, or a new folder (safetensors + config.json)")->required();
  auto* recipe = sub->add_option("--recipe,-r", o->recipe, "built-in recipe name (see `lowbit recipes`) or a JSON file");
  auto* format = sub->add_option("--format,-f", o->format, "store every matrix in this format (pure recipe)");
  recipe->excludes(format);
  auto* bpw = sub->add_option("--target-bpw", o->q.mix_target.bpw, "mixed precision: choose a format per matrix for this many bits per weight "
                              "(all tensor data), least predicted KLD (see lowbit sensitivity)");
  auto* size = sub->add_option("--target-size", o->target_size, "mixed precision: the GGUF file's size at most this (bytes, or 2.1GB, 900MiB, ...)");
  bpw->excludes(size)->excludes(recipe)->excludes(format);
  size->excludes(recipe)->excludes(format);
  sub->add_option("--sens", o->q.sensitivity, "sensitivities from lowbit sensitivity (else measured here on --calib, over --formats)");
  sub->add_option("--formats", o->formats, "mixed precision without --sens: candidate formats (default q2_k,q3_k,q4_k,q5_k,q6_k,q8_0,iq4_xs)");
  sub->add_option("--sens-samples", o->sens_calib.samples, "mixed precision without --sens: windows measured (default 8)")->check(CLI::PositiveNumber);
  sub->add_option("--sens-len", o->sens_calib.length, "mixed precision without --sens: tokens per window (default 256)")->check(CLI::PositiveNumber);
  sub->add_flag("--by-proxy", o->q.mix_target.use_proxy, "mixed precision: allocate by the proxy tr(dW H dWᵀ) instead of measured KLD");
  o->q.mix_branch.matrices = 1;
  sub->add_option("--branch", o->q.mix_branch.matrices, "mixed precision: hold each of the N largest matrices at each of its formats, solve "
                  "the plan around it, measure every plan's whole-model KLD on the calibration text (--calib, else the sensitivities') and keep "
                  "the lowest (default 1; 0: the summed single-matrix KLDs alone)")->check(CLI::NonNegativeNumber);
  sub->add_option("--emit-recipe", o->emit_recipe, "mixed precision: also write the chosen plan as a recipe JSON (apply it again with -r)");
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
  sub->add_flag("--resume", o->q.resume, "continue the partial output a killed run of this same command left (checked by its "
                "journal's digests; byte-identical to an uninterrupted run); without it such a leftover is removed");
  sub->add_flag("--json", o->json, "print the summary as JSON on stdout");
  return [o]() {
    const Method& method = method_by_name(o->q.method.name);
    if (!o->target_size.empty()) o->q.mix_target.file_bytes = parse_size(o->target_size);
    const bool mixed = o->q.mix_target.bpw > 0 || o->q.mix_target.file_bytes > 0;
    if (mixed && o->q.sensitivity.empty()) {  // measure the sensitivities first
      if (o->q.calib.empty()) throw lowbit::Error("--target-bpw/--target-size need --sens sens.json (lowbit sensitivity) or --calib to measure");
      const Model m = open_model(o->q.input, o->q.tokenizer);
      SensitivityOptions so;
      so.formats = split_list(o->formats);
      so.calib = o->sens_calib;
      so.measure = !o->q.mix_target.use_proxy;
      so.method = o->q.method.name == "gptq" ? "gptq" : "rtn";  // the plan's candidates rounded as this run rounds
      std::unique_ptr<Progress> sens_progress;
      so.progress = [&](int64_t done, int64_t total, const std::string& what) {
        if (!sens_progress) sens_progress = std::make_unique<Progress>("sensitivity", total, "choices");
        sens_progress->update(done, what);
      };
      o->q.sensitivity_data = measure_sensitivity(m, o->q.calib, so);
      o->q.sensitivity_data->model = o->q.input;
      if (sens_progress) sens_progress->finish("");
    }
    if (!mixed && (!o->q.sensitivity.empty() || !o->emit_recipe.empty())) throw lowbit::Error("--sens and --emit-recipe go with --target-bpw or --target-size");
    std::unique_ptr<Progress> branch_progress;
    o->q.mix_branch.progress = [&](int64_t done, int64_t total, const std::string& what) {
      if (!branch_progress) branch_progress = std::make_unique<Progress>("branch", total, "plans");
      branch_progress->update(done, what);
    };
    auto end_branch = [&] {  // the branching runs before the first tensor or block
      if (branch_progress) branch_progress->finish("");
      branch_progress.reset();
    };
    const bool format_given = !o->recipe.empty() || !o->format.empty() || mixed;
    if (!format_given && method.weight_format == nullptr) throw lowbit::Error("give --recipe or --format");
    if (!format_given) o->format = method.weight_format;
    if (mixed) o->recipe = "mix";
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
      end_branch();
      if (!calib_progress) calib_progress = std::make_unique<Progress>(o->q.method.name, blocks * groups, "groups");
      calib_progress->update(block * groups + group, fmt::format("block {}/{}", block + 1, blocks));
    };
    std::unique_ptr<Progress> progress;
    o->q.progress = [&, calibrated](int64_t i, int64_t n, uint64_t bytes, const std::string& name) {
      end_branch();
      if (calibrated) return;  // the calibrated pass reports per block instead
      if (!progress) progress = std::make_unique<Progress>("quantize", n, "tensors");
      progress->update(i, fmt::format("{:.1f} MB f32 in{}{}", bytes / 1e6, name.empty() ? "" : ", ", name));
    };
    const QuantizeReport r = quantize_model(o->q);
    if (!cluster().is_root()) return 0;  // under mpirun, rank 0 wrote the file and reports it
    if (calib_progress) calib_progress->finish("");
    if (progress) progress->finish(fmt::format("{:.1f} MB/s", r.parameters * 4.0 / 1e6 / r.seconds));
    if (r.mix && !o->emit_recipe.empty()) save_recipe(r.mix->recipe, o->emit_recipe);
    if (o->json) {
      nlohmann::ordered_json j{{"output", o->q.output}, {"recipe", r.recipe}, {"method", o->q.method.name},
                               {"activations", o->q.activations.act + (o->q.activations.per_tensor ? " per-tensor" : "")}, {"parameters", r.parameters},
                               {"bytes", r.bytes}, {"file_bytes", r.file_bytes}, {"bits_per_weight", r.bits_per_weight()},
                               {"seconds", r.seconds}, {"peak_rss_bytes", r.peak_rss_bytes}, {"fallbacks", r.fallbacks}, {"imatrix_missing", r.imatrix_missing}};
      if (o->q.resume) j["resume"] = {{"tensors_kept", r.resumed_tensors}, {"block", r.resumed_block}, {"note", r.resume_note}};
      if (r.mix) {
        const Allocation& a = r.mix->allocation;
        j["mix"] = {{"predicted", a.cost}, {"lower_bound", a.lower_bound}, {"optimal", a.exact}, {"budget", r.mix->budget},
                    {"matrix_bytes", a.bytes}, {"by", o->q.mix_target.use_proxy ? "proxy" : "kld"}};
        for (const auto& [name, format] : r.mix->formats) j["mix"]["formats"][name] = format;
        for (const MixBranch& b : r.mix->branches) {
          j["mix"]["branches"].push_back({{"matrix", b.matrix}, {"format", b.format}, {"kld", b.kld}, {"chosen", b.chosen}});
        }
      }
      for (const auto& [name, t] : r.formats) {
        j["formats"][name] = {{"tensors", t.tensors}, {"parameters", t.parameters}, {"bytes", t.bytes},
                              {"bits_per_weight", 8.0 * t.bytes / t.parameters}};
      }
      fmt::print("{}\n", j.dump(2));
      return 0;
    }
    fmt::print(stderr, "\n{} -> {} with recipe {} in {:.2f} s\n", o->q.input, o->q.output, r.recipe, r.seconds);
    if (!r.resume_note.empty()) fmt::print(stderr, "{}\n", r.resume_note);
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
    if (r.mix) {
      const Model m = open_model(o->q.input, o->q.tokenizer);
      fmt::print(stderr, "\n{}", mix_summary(m, *r.mix));
    }
    for (const auto& m : r.imatrix_missing) fmt::print(stderr, "no imatrix entry (quantized without): {}\n", m);
    return 0;
  };
}

}  // namespace lowbit::cli
