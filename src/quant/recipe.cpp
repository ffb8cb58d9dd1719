// Recipes: built-in mixes as data, JSON loading, rule matching and shape fallbacks.
#include "lowbit/recipe.h"

#include <fnmatch.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <map>

#include "core/json_fields.h"
#include "lowbit/error.h"
#include "lowbit/methods.h"

namespace lowbit {
namespace {

const std::vector<RecipeCondition>& conditions() {
  static const std::vector<RecipeCondition> c{
      {"gqa>=4", "n_heads / n_kv_heads >= 4 (llama.cpp's n_gqa())",
       [](const ModelTraits& m) { return m.n_kv_heads > 0 && m.n_heads / m.n_kv_heads >= 4; }},
      {"70b", "llama.cpp's 70B model type: 80 layers with grouped-query attention, not 8 experts",
       [](const ModelTraits& m) { return m.n_layers == 80 && m.n_heads != m.n_kv_heads && m.n_experts != 8; }},
      {"experts=8", "a mixture of 8 experts", [](const ModelTraits& m) { return m.n_experts == 8; }},
      {"imatrix", "an importance matrix is given", [](const ModelTraits& m) { return m.has_imatrix; }},
  };
  return c;
}

// "a,!b": every named condition holds (or, with '!', does not). Throws on an unknown name.
bool conditions_hold(const std::string& when, const ModelTraits& m) {
  if (when.empty()) return true;
  bool all = true;
  std::string_view rest = when;
  while (true) {
    const auto comma = rest.find(',');
    std::string_view term = rest.substr(0, comma);
    const bool negate = term.starts_with('!');
    if (negate) term.remove_prefix(1);
    const auto& table = conditions();
    const auto it = std::find_if(table.begin(), table.end(), [&](const RecipeCondition& c) { return term == c.name; });
    if (it == table.end()) {
      std::string known;
      for (const auto& c : table) known += (known.empty() ? "" : ", ") + std::string(c.name);
      throw Error("unknown condition '" + std::string(term.substr(0, 40)) + "' (known: " + known + ", each may start with '!')",
                  {.value = when.substr(0, 80)});
    }
    all = all && (it->holds(m) != negate);
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  return all;
}

// Fallbacks when a row does not fit (llama.cpp's choices first, then q8_0, then f16).
const std::map<std::string, std::vector<std::string>>& fallbacks() {
  static const std::map<std::string, std::vector<std::string>> f{
      {"q2_k", {"iq4_nl", "q8_0", "f16"}},   {"q3_k", {"iq4_nl", "q8_0", "f16"}},
      {"q4_k", {"q5_0", "q8_0", "f16"}},     {"q5_k", {"q5_1", "q8_0", "f16"}},
      {"q6_k", {"q8_0", "f16"}},             {"iq4_xs", {"iq4_nl", "q8_0", "f16"}},
      {"tq1_0", {"iq4_nl", "q8_0", "f16"}},  {"tq2_0", {"iq4_nl", "q8_0", "f16"}},
  };
  return f;
}

constexpr int64_t kMaxLayerIndex = int64_t{1} << 20;

// A non-negative integer of a layer selector, range-checked; throws naming the selector.
int64_t selector_int(std::string_view text, const std::string& spec, int64_t min = 0) {
  int64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || v < min || v > kMaxLayerIndex) {
    throw Error("malformed layer selector: '" + std::string(text.substr(0, 40)) + "' is not an integer in [" +
                    std::to_string(min) + ", " + std::to_string(kMaxLayerIndex) + "]",
                {.value = spec.substr(0, 80)});
  }
  return v;
}

// "K/D" of first:K/D and last:K/D: the count K * n / D, with 0 <= K <= D and D >= 1.
int64_t layer_fraction(std::string_view f, const std::string& spec, int64_t n) {
  const auto slash = f.find('/');
  if (slash == std::string_view::npos) throw Error("malformed layer selector: a fraction must be K/D", {.value = spec.substr(0, 80)});
  const int64_t k = selector_int(f.substr(0, slash), spec), d = selector_int(f.substr(slash + 1), spec, 1);
  if (k > d) throw Error("malformed layer selector: K/D with K > D", {.value = spec.substr(0, 80)});
  return k * n / d;
}

bool layer_selected(const std::string& spec, int64_t layer, int64_t n) {
  if (spec.empty() || spec == "all") return true;
  if (spec == "more-bits") return layer >= 0 && (layer < n / 8 || layer >= 7 * n / 8 || (layer - n / 8) % 3 == 2);
  if (spec.starts_with("first:")) return layer >= 0 && layer < layer_fraction(std::string_view(spec).substr(6), spec, n);
  if (spec.starts_with("last:")) return layer >= 0 && layer >= n - layer_fraction(std::string_view(spec).substr(5), spec, n);
  bool selected = false;
  std::string_view rest = spec;
  while (true) {
    const auto comma = rest.find(',');
    const std::string_view part = rest.substr(0, comma);
    const auto dash = part.find('-');
    const int64_t a = selector_int(part.substr(0, dash), spec);
    const int64_t b = dash == std::string_view::npos ? a : selector_int(part.substr(dash + 1), spec);
    if (b < a) throw Error("malformed layer selector: range " + std::string(part) + " ends before it starts", {.value = spec.substr(0, 80)});
    if (layer >= a && layer <= b) selected = true;
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  return selected;
}

// "blk.3.attn_v.weight" -> "attn_v"; "output.weight" -> "output".
std::string tensor_part(const std::string& name) {
  std::string n = name;
  if (n.ends_with(".weight")) n.resize(n.size() - 7);
  if (n.rfind("blk.", 0) == 0) {
    const auto dot = n.find('.', 4);
    if (dot != std::string::npos) n = n.substr(dot + 1);
  }
  return n;
}

void validate(const Recipe& r, const std::string& source) {
  auto check_format = [&](const std::string& f, const std::string& where) {
    if (f == "keep") return;
    if (!find_format(f)) throw Error("unknown format in " + where, {.file = source, .value = f.substr(0, 80)});
  };
  check_format(r.base, "'base'");
  for (size_t i = 0; i < r.rules.size(); ++i) {
    check_format(r.rules[i].format, "'rules[" + std::to_string(i) + "].format'");
    try {
      layer_selected(r.rules[i].layers, 0, 8);  // throws on a malformed selector
    } catch (const Error& e) {
      throw Error(e.message() + " in 'rules[" + std::to_string(i) + "].layers'", {.file = source, .value = e.context().value});
    }
    if (!r.rules[i].method.empty() || !r.rules[i].options.empty()) {
      try {
        check_method_config({r.rules[i].method.empty() ? "gptq" : r.rules[i].method, r.rules[i].options});
      } catch (const Error& e) {
        throw Error(e.message() + " in 'rules[" + std::to_string(i) + "]'", {.file = source, .value = e.context().value});
      }
    }
    try {
      conditions_hold(r.rules[i].when, {});  // throws on an unknown condition
    } catch (const Error& e) {
      throw Error(e.message() + " in 'rules[" + std::to_string(i) + "].when'", {.file = source, .value = e.context().value});
    }
  }
}

}  // namespace

const std::vector<RecipeCondition>& recipe_conditions() { return conditions(); }

std::vector<const Format*> fallback_chain(const Format& f) {
  std::vector<const Format*> chain;
  const auto it = fallbacks().find(std::string(f.name));
  if (it != fallbacks().end()) {
    for (const auto& n : it->second) chain.push_back(&format_by_name(n));
  } else if (f.name != "f16" && f.name != "f32" && f.name != "bf16") {
    if (f.name != "q8_0") chain.push_back(&format_by_name("q8_0"));
    chain.push_back(&format_by_name("f16"));
  }
  return chain;
}

Recipe single_format_recipe(const std::string& format) {
  const std::string name = format.rfind("pure:", 0) == 0 ? format.substr(5) : format;
  format_by_name(name);
  return Recipe{"pure:" + name, "every matrix in " + name, name, {}};
}

Recipe load_recipe(const std::string& name_or_path) {
  for (const auto& r : builtin_recipes()) {
    if (r.name == name_or_path) return r;
  }
  if (name_or_path.rfind("pure:", 0) == 0) return single_format_recipe(name_or_path);
  if (!std::filesystem::exists(name_or_path)) {
    std::string known;
    for (const auto& r : builtin_recipes()) known += (known.empty() ? "" : ", ") + r.name;
    throw Error("unknown recipe (built-ins: " + known + ", pure:FORMAT, or a JSON file)", {.value = name_or_path});
  }
  const Json root = read_json_file(name_or_path);
  const JsonObject j(root, name_or_path);
  Recipe r;
  r.name = j.get_string("name", std::filesystem::path(name_or_path).stem().string());
  r.description = j.get_string("description", "");
  r.base = j.get_string("base");
  if (j.has("rules")) {
    const Json& rules = j.get_array("rules");
    for (size_t i = 0; i < rules.size(); ++i) {
      const JsonObject rule = j.element(rules, "rules", i);
      RecipeRule parsed{rule.get_string("tensor"), rule.get_string("layers", ""), rule.get_string("format"),
                        rule.get_string("when", ""), rule.get_string("method", ""), {}};
      if (rule.has("options")) {
        const JsonObject opts = rule.get_object("options");
        for (const auto& [k, v] : opts.json().items()) {
          if (v.is_string()) {
            parsed.options[k] = v.get<std::string>();
          } else if (v.is_boolean() || v.is_number()) {
            parsed.options[k] = v.dump();
          } else {
            opts.fail(k, "must be a string, number or boolean", &v);
          }
        }
      }
      r.rules.push_back(std::move(parsed));
    }
  }
  validate(r, name_or_path);
  return r;
}

TensorChoice choose_format(const Recipe& recipe, const std::string& tensor_name, int64_t layer, const ModelTraits& model,
                           int64_t cols) {
  const std::string part = tensor_part(tensor_name);
  std::string chosen = recipe.base, reason = "base", method;
  std::map<std::string, std::string> options;
  for (size_t i = 0; i < recipe.rules.size(); ++i) {
    const RecipeRule& rule = recipe.rules[i];
    if (fnmatch(rule.tensor.c_str(), part.c_str(), 0) == 0 && layer_selected(rule.layers, layer, model.n_layers) &&
        conditions_hold(rule.when, model)) {
      chosen = rule.format;
      reason = "rule " + std::to_string(i) + " (" + rule.tensor + (rule.layers.empty() ? "" : " @ " + rule.layers) +
               (rule.when.empty() ? "" : " when " + rule.when) + ")";
      method = rule.method;
      options = rule.options;
      break;
    }
  }
  if (chosen == "keep") return {nullptr, reason + ": kept as stored", false, method, options};
  const Format* f = &format_by_name(chosen);
  if (format_fits(*f, cols)) return {f, reason, false, method, options};
  for (const Format* alt : fallback_chain(*f)) {
    if (format_fits(*alt, cols)) {
      return {alt, reason + ": " + std::string(f->name) + " needs rows of a multiple of " + std::to_string(f->block_size) +
                       ", this tensor has " + std::to_string(cols) + " -> " + std::string(alt->name),
              true, method, options};
    }
  }
  throw Error("no format fits this tensor", {.tensor = tensor_name, .value = std::to_string(cols) + " columns"});
}

std::string describe_recipe(const Recipe& r) {
  std::string s = r.name + ": " + r.description + "\n  base " + r.base + "\n";
  for (size_t i = 0; i < r.rules.size(); ++i) {
    const auto& rule = r.rules[i];
    s += "  " + std::to_string(i) + ". " + rule.tensor + (rule.layers.empty() ? "" : " @ layers " + rule.layers) +
         (rule.when.empty() ? "" : " when " + rule.when) + " -> " + rule.format + "\n";
  }
  return s;
}

}  // namespace lowbit
