// `lowbit formats [--json]`: prints the format table.
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "lowbit/format.h"

namespace lowbit::cli {

Runner register_formats(CLI::App& app) {
  auto* sub = app.add_subcommand("formats", "list the storage formats (the format table)");
  auto json = std::make_shared<bool>(false);
  sub->add_flag("--json", *json, "machine-readable output");
  return [json]() {
    if (*json) {
      nlohmann::ordered_json out = nlohmann::ordered_json::array();
      for (const auto& f : format_table()) {
        out.push_back({{"name", f.name},
                       {"gguf_type", f.gguf_type == kNotGguf ? nlohmann::ordered_json(nullptr)
                                                              : nlohmann::ordered_json(f.gguf_type)},
                       {"block_size", f.block_size == kPerRow ? nlohmann::ordered_json("row")
                                                              : nlohmann::ordered_json(f.block_size)},
                       {"bytes_per_block", f.block_bytes},
                       {"bits_per_weight", f.bits_per_weight},
                       {"kind", format_kind_name(f.kind)},
                       {"uses_importance", f.uses_importance},
                       {"description", f.description}});
      }
      fmt::print("{}\n", out.dump(2));
      return 0;
    }
    fmt::print("{:<16} {:>4} {:>6} {:>6} {:>8}  {:<12} {}\n", "name", "gguf", "block", "bytes",
               "bpw", "kind", "description");
    for (const auto& f : format_table()) {
      const std::string gguf = f.gguf_type == kNotGguf ? "-" : std::to_string(f.gguf_type);
      const std::string block = f.block_size == kPerRow ? "row" : std::to_string(f.block_size);
      fmt::print("{:<16} {:>4} {:>6} {:>6} {:>8.4f}  {:<12} {}\n", f.name, gguf, block,
                 f.block_bytes, f.bits_per_weight, format_kind_name(f.kind), f.description);
    }
    fmt::print("\nbpw is for a 4096 x 4096 tensor; 'row' formats store one group per row, "
               "bytes is then their per-row header.\n");
    return 0;
  };
}

}  // namespace lowbit::cli
