// plan_mixed_precision, save_recipe and mix_summary (lowbit/mix.h): sensitivities and a size
// target into a per-matrix recipe, and what it gives each layer.
#include <fmt/format.h>

#include <algorithm>
#include <map>

#include <nlohmann/json.hpp>

#include "lowbit/atomic_file.h"
#include "lowbit/error.h"
#include "lowbit/format.h"
#include "lowbit/mix.h"

namespace lowbit {
namespace {

int64_t layer_of(const std::string& name) { return name.rfind("blk.", 0) == 0 ? std::stoll(name.substr(4, name.find('.', 4) - 4)) : -1; }

// "blk.3.attn_v.weight" -> "attn_v"; "output.weight" -> "output"
std::string part_of(const std::string& name) {
  std::string n = name.substr(0, name.size() - 7);
  return n.rfind("blk.", 0) == 0 ? n.substr(n.find('.', 4) + 1) : n;
}

}  // namespace

MixPlan plan_mixed_precision(const Model& m, const SensitivityReport& s, const MixTarget& target, uint64_t fixed_bytes, uint64_t align,
                             const std::map<std::string, std::string>& hold) {
  std::map<std::string, const TensorSensitivity*> by_name;
  for (const TensorSensitivity& t : s.tensors) by_name[t.name] = &t;
  MixPlan plan;
  plan.fixed_bytes = fixed_bytes;
  std::vector<KnapsackItem> items;
  std::vector<const TensorSensitivity*> order;
  std::vector<std::vector<size_t>> choice_of;  // per item, its candidates' indices into the sensitivities' choices
  int64_t parameters = 0;
  uint64_t f32_bytes = 0;
  auto padded = [&](uint64_t b) { return (b + align - 1) / align * align; };
  for (const Weight* w : m.weights()) {
    parameters += w->numel();
    if (w->rows == 1) continue;
    const auto it = by_name.find(w->name);
    if (it == by_name.end() || it->second->rows != w->rows || it->second->cols != w->cols || it->second->choices.empty()) {
      throw Error("the sensitivities do not cover this matrix", {.file = s.model, .tensor = w->name});
    }
    KnapsackItem item;
    const auto held = hold.find(w->name);
    std::vector<size_t> index;
    for (const SensitivityChoice& ch : it->second->choices) {
      if (held != hold.end() && ch.format != held->second) continue;
      index.push_back(static_cast<size_t>(&ch - it->second->choices.data()));
      if (!target.use_proxy && ch.kld < 0) {
        throw Error("the sensitivities hold no measured KLD (measured without it): measure it, or allocate by the proxy", {.file = s.model, .tensor = w->name});
      }
      item.bytes.push_back(padded(ch.bytes));
      item.cost.push_back(target.use_proxy ? ch.proxy : ch.kld);
    }
    if (item.bytes.empty()) throw Error("the format held is not one of the matrix's candidates", {.tensor = w->name, .value = held->second});
    f32_bytes += padded(static_cast<uint64_t>(w->numel()) * 4);
    items.push_back(std::move(item));
    order.push_back(it->second);
    choice_of.push_back(std::move(index));
  }
  const std::string what = target.bpw > 0 ? fmt::format("--target-bpw {}", target.bpw) : fmt::format("--target-size {} bytes", target.file_bytes);
  const double total = target.bpw > 0 ? target.bpw * static_cast<double>(parameters) / 8.0 : static_cast<double>(target.file_bytes);
  if (total <= static_cast<double>(fixed_bytes)) {
    throw Error("the size target is below the smallest plan (the tensors outside the plan alone take " + std::to_string(fixed_bytes) + " bytes)",
                {.value = what});
  }
  plan.budget = static_cast<uint64_t>(total) - fixed_bytes;
  if (plan.budget >= f32_bytes) {
    throw Error("the size target is at or above the model in f32 (" + std::to_string(f32_bytes + fixed_bytes) + " bytes): nothing to choose",
                {.value = what});
  }
  try {
    plan.allocation = allocate_knapsack(items, plan.budget);
  } catch (const Error& e) {
    throw Error(e.message() + " (" + what + ")", e.context());
  }
  std::map<std::string, int64_t> count;
  Recipe& r = plan.recipe;
  r.name = target.bpw > 0 ? fmt::format("mix-{:.3f}bpw", target.bpw) : fmt::format("mix-{}B", target.file_bytes);
  r.description = fmt::format("measured mixed precision ({}): predicted {} {:.6g}, {} of {} bytes", what, target.use_proxy ? "proxy" : "KLD",
                              plan.allocation.cost, plan.allocation.bytes, plan.budget);
  for (size_t i = 0; i < order.size(); ++i) {
    const std::string& format = order[i]->choices[choice_of[i][plan.allocation.choice[i]]].format;
    plan.formats.emplace_back(order[i]->name, format);
    ++count[format];
    const int64_t layer = layer_of(order[i]->name);
    // A tied embedding follows output's rules (choose_format asks for it so).
    std::string part = part_of(order[i]->name);
    if (m.config.tied_output && part == "token_embd") part = "output";
    r.rules.push_back({part, layer >= 0 ? std::to_string(layer) : "", format, "", "", {}});
  }
  r.base = std::max_element(count.begin(), count.end(), [](auto& a, auto& b) { return a.second < b.second; })->first;
  return plan;
}

void save_recipe(const Recipe& r, const std::string& path) {
  nlohmann::ordered_json rules = nlohmann::ordered_json::array();
  for (const RecipeRule& rule : r.rules) {
    nlohmann::ordered_json j{{"tensor", rule.tensor}};
    if (!rule.layers.empty()) j["layers"] = rule.layers;
    j["format"] = rule.format;
    rules.push_back(j);
  }
  const nlohmann::ordered_json j{{"name", r.name}, {"description", r.description}, {"base", r.base}, {"rules", rules}};
  const std::string text = j.dump(1) + "\n";
  AtomicFile f(path);
  f.write(text.data(), text.size());
  f.commit();
}

std::string mix_summary(const Model& m, const MixPlan& plan) {
  const char* const kinds[] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};
  std::map<std::string, std::string> chosen(plan.formats.begin(), plan.formats.end());
  std::string out = fmt::format("{:<10}", "layer");
  for (const char* k : kinds) out += fmt::format(" {:>11}", k);
  out += "    bpw\n";
  auto bar = [](double bpw) { return std::string(static_cast<size_t>(std::clamp(bpw, 0.0, 16.0) * 3 + 0.5), '#'); };
  for (const auto& [name, format] : plan.formats) {  // token_embd and output first, one line each
    if (name.rfind("blk.", 0) == 0) continue;
    const Weight* w = nullptr;
    for (const Weight* x : m.weights()) w = x->name == name ? x : w;
    const double bpw = 8.0 * static_cast<double>(format_by_name(format).tensor_bytes(w->rows, w->cols)) / static_cast<double>(w->numel());
    out += fmt::format("{:<10} {:>11}{}  {:5.2f} {}\n", part_of(name), format, std::string(12 * 6, ' '), bpw, bar(bpw));
  }
  for (int64_t l = 0; l < m.config.n_layers; ++l) {
    out += fmt::format("{:<10}", "blk." + std::to_string(l));
    uint64_t bytes = 0;
    int64_t params = 0;
    for (const char* k : kinds) {
      const std::string name = "blk." + std::to_string(l) + "." + k + ".weight";
      const auto it = chosen.find(name);
      out += fmt::format(" {:>11}", it == chosen.end() ? "-" : it->second);
      if (it == chosen.end()) continue;
      for (const Weight* w : m.weights()) {
        if (w->name != name) continue;
        bytes += format_by_name(it->second).tensor_bytes(w->rows, w->cols);
        params += w->numel();
      }
    }
    const double bpw = params > 0 ? 8.0 * static_cast<double>(bytes) / static_cast<double>(params) : 0;
    out += fmt::format("  {:5.2f} {}\n", bpw, bar(bpw));
  }
  const Allocation& a = plan.allocation;
  out += fmt::format("predicted cost {:.6g} (lower bound {:.6g}{}), {} of {} bytes for the matrices\n", a.cost, a.lower_bound,
                     a.exact ? "; optimal" : fmt::format("; sizes in units of {} bytes", a.unit), a.bytes, plan.budget);
  for (const MixBranch& b : plan.branches) {
    out += fmt::format("branch: {} held at {:<7} calibration KLD {:.6g}{}\n", b.matrix, b.format, b.kld, b.chosen ? "  <- chosen" : "");
  }
  return out;
}

}  // namespace lowbit
