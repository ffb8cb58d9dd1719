// branch_mixed_precision (lowbit/mix.h): plans with the largest matrices held at each of
// their candidates, each measured whole on the calibration windows.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <memory>

#include "lowbit/error.h"
#include "lowbit/mix.h"
#include "quant/mix/float_run.h"

namespace lowbit {
namespace {

Weight& slot_of(Model& m, const std::map<std::string, LinearSlot>& linears, const std::string& name) {
  if (name == "token_embd.weight") return m.token_embd;
  if (name == "output.weight") return m.output;
  const LinearSlot& s = linears.at(name);
  return m.layers[s.layer].*(s.member);
}

// Mean KLD per scored token of the model as `formats` quantizes it against the float run; the
// roundings kept in `cache` by (matrix, format) for the other plans.
double plan_kld(FloatRun& run, const std::string& method, const std::vector<std::pair<std::string, std::string>>& formats,
                std::map<std::pair<std::string, std::string>, std::shared_ptr<const std::vector<uint8_t>>>& cache) {
  Model pm = run.model;
  for (const auto& [name, format] : formats) {
    Weight& w = slot_of(pm, run.linears, name);
    auto& bytes = cache[{name, format}];
    const Format& f = format_by_name(format);
    if (!bytes) bytes = std::make_shared<const std::vector<uint8_t>>(run.round(w, f, method));
    w = Weight{w.name, &f, w.rows, w.cols, *bytes, bytes};
    if (name == "token_embd.weight" && pm.config.tied_output) {  // the head reads the same matrix, held apart as output (model.h)
      pm.output = w;
      pm.output.name = "output.weight";
    }
  }
  Engine e(pm, run.T);  // repacked, as lowbit eval runs the file
  std::vector<float> x(static_cast<size_t>(run.T * run.C)), logq(static_cast<size_t>(run.T * run.V));
  // Scored as lowbit eval and llama-perplexity score: the second half of each window, the
  // tokens that see at least half a window of context.
  const int64_t first = run.T / 2, scored = run.T - first;
  double kl = 0;
  for (int64_t s = 0; s < run.S; ++s) {
    e.embed(run.cs.samples[s], x.data());
    for (int64_t l = 0; l < run.L; ++l) e.block(pm.layers[l], l, x.data(), run.T, 0);
    e.head(x.data(), run.T, logq.data());
    log_softmax_rows(logq.data() + first * run.V, scored, run.V);
    kl += kl_sum(run.logp.data() + (s * run.T + first) * run.V, logq.data() + first * run.V, scored, run.V);
  }
  return std::max(0.0, kl / static_cast<double>(run.S * scored));
}

}  // namespace

MixPlan branch_mixed_precision(const Model& m, const SensitivityReport& s, const MixTarget& target, uint64_t fixed_bytes, uint64_t align,
                               const std::string& calib, const BranchOptions& o) {
  MixPlan plan = plan_mixed_precision(m, s, target, fixed_bytes, align);
  if (o.matrices <= 0) return plan;
  if (s.samples <= 0 || s.length <= 0) throw Error("the sensitivities do not say their calibration windows", {.file = s.model});
  // The plans: the largest matrices (most parameters first), each held at each candidate.
  std::vector<const TensorSensitivity*> largest;
  for (const TensorSensitivity& t : s.tensors) largest.push_back(&t);
  std::stable_sort(largest.begin(), largest.end(), [](auto* a, auto* b) { return a->rows * a->cols > b->rows * b->cols; });
  largest.resize(std::min(largest.size(), static_cast<size_t>(o.matrices)));
  std::vector<MixPlan> plans;
  for (const TensorSensitivity* t : largest) {
    for (const SensitivityChoice& ch : t->choices) {
      MixPlan p;
      try {
        p = plan_mixed_precision(m, s, target, fixed_bytes, align, {{t->name, ch.format}});
      } catch (const Error&) {  // held there, nothing fits the target
        continue;
      }
      p.branches = {{t->name, ch.format, 0, false}};
      plans.push_back(std::move(p));
    }
  }
  if (plans.empty()) return plan;
  const CalibrationSet cs = load_calibration(m, calib, {.samples = s.samples, .length = s.length, .seed = 0});
  FloatRun run(m, cs);
  std::map<std::pair<std::string, std::string>, std::shared_ptr<const std::vector<uint8_t>>> cache;
  std::map<std::vector<std::pair<std::string, std::string>>, double> measured;  // distinct plans measured once
  size_t best = 0;
  std::vector<MixBranch> branches;
  for (size_t i = 0; i < plans.size(); ++i) {
    auto [it, fresh] = measured.try_emplace(plans[i].formats, 0.0);
    if (fresh) it->second = plan_kld(run, s.method, plans[i].formats, cache);
    MixBranch b = plans[i].branches.front();
    b.kld = it->second;
    branches.push_back(b);
    if (b.kld < branches[best].kld) best = i;
    if (o.progress) o.progress(static_cast<int64_t>(i + 1), static_cast<int64_t>(plans.size()), b.matrix + " " + b.format);
  }
  branches[best].chosen = true;
  MixPlan chosen = std::move(plans[best]);
  chosen.branches = std::move(branches);
  chosen.recipe.description += fmt::format("; {} held at {} (of {} plans measured, calibration KLD {:.6g})", chosen.branches[best].matrix,
                                           chosen.branches[best].format, measured.size(), chosen.branches[best].kld);
  return chosen;
}

}  // namespace lowbit
