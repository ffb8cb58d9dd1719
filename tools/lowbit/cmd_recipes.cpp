// `lowbit recipes [--json]`: the built-in recipes as their rule lists.
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "lowbit/recipe.h"

namespace lowbit::cli {

Runner register_recipes(CLI::App& app) {
  auto* sub = app.add_subcommand("recipes", "list the built-in quantization recipes and their rules");
  auto json = std::make_shared<bool>(false);
  sub->add_flag("--json", *json, "machine-readable output (the same form a recipe file takes)");
  return [json]() {
    if (*json) {
      nlohmann::ordered_json out = nlohmann::ordered_json::array();
      for (const auto& r : builtin_recipes()) {
        nlohmann::ordered_json rules = nlohmann::ordered_json::array();
        for (const auto& rule : r.rules) {
          nlohmann::ordered_json j{{"tensor", rule.tensor}, {"layers", rule.layers}, {"format", rule.format}};
          if (!rule.when.empty()) j["when"] = rule.when;
          rules.push_back(j);
        }
        out.push_back({{"name", r.name}, {"description", r.description}, {"base", r.base}, {"rules", rules}});
      }
      fmt::print("{}\n", out.dump(2));
      return 0;
    }
    for (const auto& r : builtin_recipes()) fmt::print("{}\n", describe_recipe(r));
    fmt::print("pure:FORMAT stores every matrix in FORMAT. Rules match the tensor name without blk.N. and\n"
               ".weight (globs allowed); layers: N, A-B, lists, more-bits, first:K/D, last:K/D.\n"
               "'when' names model traits (all must hold; '!' negates):\n");
    for (const auto& c : recipe_conditions()) fmt::print("  {:<10} {}\n", c.name, c.meaning);
    fmt::print(
               "Rows that do not fit a format fall back: q2_k/q3_k/tq*/iq4_xs -> iq4_nl, q4_k -> q5_0,\n"
               "q5_k -> q5_1, q6_k -> q8_0, then q8_0, then f16.\n");
    return 0;
  };
}

}  // namespace lowbit::cli
