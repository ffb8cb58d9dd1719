// `lowbit sensitivity MODEL --calib FILE [--formats ...] [--method rtn|gptq] [--proxy-only] -o sens.json`: the
// cost of quantizing each matrix alone into each candidate format (proxy and measured KLD),
// for `quantize --target-bpw/--target-size --sens`. Prints the most sensitive matrices and
// how well the proxy ranks them.
#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "lowbit/cluster.h"
#include "lowbit/error.h"
#include "lowbit/output_guard.h"
#include "lowbit/progress.h"
#include "lowbit/sensitivity.h"

namespace lowbit::cli {

Runner register_sensitivity(CLI::App& app) {
  auto* sub = app.add_subcommand("sensitivity", "per-matrix cost of each candidate format (proxy and measured KLD), for mixed precision");
  struct Options {
    std::string model, calib, out, tokenizer, formats = "q2_k,q3_k,q4_k,q5_k,q6_k,q8_0,iq4_xs";
    SensitivityOptions s;
    bool proxy_only = false, json = false;
  };
  auto o = std::make_shared<Options>();
  sub->add_option("model", o->model, "HF folder, .gguf file or llama2.c checkpoint")->required();
  sub->add_option("--calib", o->calib, "calibration text")->required();
  sub->add_option("-o,--output", o->out, "sens.json to write")->required();
  sub->add_option("--formats", o->formats, "candidate formats, comma-separated (default q2_k,q3_k,q4_k,q5_k,q6_k,q8_0,iq4_xs)");
  sub->add_option("--method", o->s.method, "how each candidate is rounded: rtn (default) or gptq (block linears, Hessians from the calibration windows)")
      ->check(CLI::IsMember({"rtn", "gptq"}));
  sub->add_option("--calib-samples", o->s.calib.samples, "calibration windows (default 8)")->check(CLI::PositiveNumber);
  sub->add_option("--calib-len", o->s.calib.length, "tokens per window (default 256, or the model's context if shorter)")->check(CLI::PositiveNumber);
  sub->add_option("--seed", o->s.calib.seed, "seed of the window choice (default 0)");
  sub->add_flag("--proxy-only", o->proxy_only, "skip the measured KLD (the proxy alone: one pass, no per-matrix runs)");
  sub->add_option("--tokenizer", o->tokenizer, "tokenizer .bin for llama2.c checkpoints");
  sub->add_option("--checkpoint-every", o->s.checkpoint.every_seconds,
                  "save the matrices measured so far to OUTPUT.checkpoint every this many seconds (default 30)")->check(CLI::PositiveNumber);
  sub->add_flag("--resume", o->s.checkpoint.resume, "continue a killed run from OUTPUT.checkpoint (same model, text and options): "
                "the result equals an uninterrupted run's");
  sub->add_flag("--json", o->json, "print the summary as JSON on stdout");
  return [o]() {
    o->s.formats.clear();
    for (size_t at = 0; at <= o->formats.size();) {
      const size_t comma = std::min(o->formats.find(',', at), o->formats.size());
      if (comma > at) o->s.formats.push_back(o->formats.substr(at, comma - at));
      at = comma + 1;
    }
    for (const std::string& f : o->s.formats) format_by_name(f);
    o->s.measure = !o->proxy_only;
    const Model m = open_model(o->model, o->tokenizer);
    refuse_overwriting_inputs(o->out, inputs_of(m, {o->calib}));
    std::unique_ptr<Progress> progress;
    o->s.progress = [&](int64_t done, int64_t total, const std::string& what) {
      if (!progress) progress = std::make_unique<Progress>("sensitivity", total, "choices");
      progress->update(done, what);
    };
    std::string note;
    o->s.checkpoint.path = o->out + ".checkpoint";
    o->s.resume_note = &note;
    SensitivityReport r = measure_sensitivity(m, o->calib, o->s);
    if (!cluster().is_root()) return 0;  // under mpirun, rank 0 writes the report
    if (progress) progress->finish("");
    if (!note.empty()) fmt::print(stderr, "{}\n", note);
    r.model = o->model;
    save_sensitivity(r, o->out);
    if (o->json) {
      nlohmann::ordered_json j{{"output", o->out}, {"tensors", r.tensors.size()}, {"measured", r.measured}};
      for (const auto& [f, rho] : r.rank_correlation) j["rank_correlation"][f] = rho;
      fmt::print("{}\n", j.dump(2));
      return 0;
    }
    // The most sensitive matrices at the cheapest candidate.
    std::vector<std::pair<double, std::string>> top;
    for (const TensorSensitivity& t : r.tensors) {
      const SensitivityChoice& c = *std::min_element(t.choices.begin(), t.choices.end(), [](auto& a, auto& b) { return a.bytes < b.bytes; });
      top.emplace_back(r.measured ? c.kld : c.proxy, fmt::format("{:<28} {:>8}", t.name, c.format));
    }
    std::sort(top.rbegin(), top.rend());
    fmt::print(stderr, "{} -> {}: {} matrices x {} formats; most sensitive at their smallest candidate ({}):\n", o->model, o->out, r.tensors.size(),
               r.formats.size(), r.measured ? "KLD" : "proxy");
    for (size_t i = 0; i < std::min<size_t>(8, top.size()); ++i) fmt::print(stderr, "  {} {:.4g}\n", top[i].second, top[i].first);
    for (const auto& [f, rho] : r.rank_correlation) fmt::print(stderr, "proxy vs KLD rank correlation, {}: {:.3f}\n", f, rho);
    return 0;
  };
}

}  // namespace lowbit::cli
