// `lowbit info MODEL [--json]`: architecture, shapes, tokenizer, and each tensor's format,
// size and bits per weight.
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "lowbit/model_io.h"
#include "lowbit/weight_check.h"

namespace lowbit::cli {

Runner register_info(CLI::App& app) {
  auto* sub = app.add_subcommand("info", "describe a model: architecture, shapes, formats per tensor, size");
  struct Options {
    std::string model, tokenizer;
    bool json = false;
  };
  auto o = std::make_shared<Options>();
  sub->add_option("model", o->model, "HF folder, .gguf file or llama2.c checkpoint")->required();
  sub->add_option("--tokenizer", o->tokenizer, "tokenizer .bin for llama2.c checkpoints");
  sub->add_flag("--json", o->json, "machine-readable output");
  return [o]() {
    const Model m = load_model(o->model, {.tokenizer_path = o->tokenizer});
    const ModelConfig& c = m.config;
    const double bpw = 8.0 * m.weight_bytes() / m.parameter_count();
    // NaN/Inf are reported, not refused: info is how a user finds them.
    const auto nonfinite = find_nonfinite_weights(m);
    auto where = [](const NonFiniteWeight& f) {
      return fmt::format("{} non-finite value(s), first at row {}, column {} ({})", f.count, f.row, f.col, f.value);
    };
    if (o->json) {
      nlohmann::ordered_json j;
      j["source"] = m.source;
      j["architecture"] = c.architecture;
      j["config"] = {{"dim", c.dim}, {"hidden_dim", c.hidden_dim}, {"n_layers", c.n_layers}, {"n_heads", c.n_heads},
                     {"n_kv_heads", c.n_kv_heads}, {"vocab_size", c.vocab_size}, {"context_length", c.context_length},
                     {"rope_theta", c.rope_theta}, {"norm_eps", c.norm_eps},
                     {"rope_style", c.rope_style == RopeStyle::kRotateHalf ? "rotate-half" : "adjacent-pairs"},
                     {"tied_output", c.tied_output}};
      j["tokenizer"] = m.tokenizer->kind();
      j["parameters"] = m.parameter_count();
      j["bytes"] = m.weight_bytes();
      j["bits_per_weight"] = bpw;
      for (const Weight* w : m.weights()) {
        j["tensors"].push_back({{"name", w->name}, {"shape", {w->rows, w->cols}}, {"format", w->format->name},
                                {"bytes", w->data.size()}, {"bits_per_weight", 8.0 * w->data.size() / w->numel()}});
      }
      j["nonfinite"] = nlohmann::ordered_json::array();
      for (const auto& f : nonfinite) {
        j["nonfinite"].push_back({{"tensor", f.tensor}, {"count", f.count}, {"row", f.row}, {"column", f.col}});
      }
      fmt::print("{}\n", j.dump(2));
      return 0;
    }
    fmt::print("{}\n  architecture {}, {} layers, dim {}, hidden {}, heads {} (kv {}), head dim {}\n", m.source,
               c.architecture, c.n_layers, c.dim, c.hidden_dim, c.n_heads, c.n_kv_heads, c.head_dim());
    fmt::print("  vocab {}, context {}, rope theta {} ({}), rms eps {}, output {}\n", c.vocab_size, c.context_length,
               c.rope_theta, c.rope_style == RopeStyle::kRotateHalf ? "rotate-half" : "adjacent pairs", c.norm_eps,
               c.tied_output ? "tied to the embedding" : "separate");
    fmt::print("  tokenizer: {}\n", m.tokenizer->kind());
    fmt::print("  {} parameters, {} bytes, {:.4f} bits per weight\n\n", m.parameter_count(), m.weight_bytes(), bpw);
    fmt::print("{:<28} {:>14} {:<10} {:>12} {:>8}\n", "tensor", "shape", "format", "bytes", "bpw");
    for (const Weight* w : m.weights()) {
      fmt::print("{:<28} {:>14} {:<10} {:>12} {:>8.4f}\n", w->name, fmt::format("{} x {}", w->rows, w->cols),
                 w->format->name, w->data.size(), 8.0 * w->data.size() / w->numel());
    }
    if (!nonfinite.empty()) {
      fmt::print("\nWARNING: {} tensor(s) hold non-finite weights; other commands refuse this model:\n", nonfinite.size());
      for (const auto& f : nonfinite) fmt::print("  {}: {}\n", f.tensor, where(f));
    }
    return 0;
  };
}

}  // namespace lowbit::cli
