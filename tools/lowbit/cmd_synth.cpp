// `lowbit synth --shape NAME [--format F] -o FILE.gguf [--seed N] [--layers N] [--json]` writes a model of
// a real architecture's shape with seeded random weights and a byte-level BPE vocabulary
// llama.cpp loads; `lowbit synth --list` prints the shapes.
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "lowbit/error.h"
#include "lowbit/progress.h"
#include "lowbit/synth.h"

namespace lowbit::cli {

Runner register_synth(CLI::App& app) {
  auto* sub = app.add_subcommand("synth", "write a model of a real architecture's shape with random weights (for speed and memory measurements)");
  struct Options {
    SynthOptions s;
    bool list = false, json = false;
  };
  auto o = std::make_shared<Options>();
  sub->add_option("--shape,-s", o->s.shape, "model shape (see --list), e.g. tinyllama-1.1b, llama-7b, llama3-8b");
  sub->add_option("--format,-f", o->s.format, "format of the matrices (norms are f32; default f16)");
  sub->add_option("-o,--output", o->s.output, "output .gguf file");
  sub->add_option("--seed", o->s.seed, "seed of the weights (default 1)");
  sub->add_option("--layers", o->s.layers, "blocks to write instead of the shape's (same widths and vocabulary)");
  sub->add_flag("--list", o->list, "list the shapes");
  sub->add_flag("--json", o->json, "print the result (or the shape list) as JSON on stdout");
  return [o]() {
    if (o->list) {
      nlohmann::ordered_json j = nlohmann::ordered_json::array();
      for (const SynthShape& s : synth_shapes()) {
        const ModelConfig& c = s.config;
        j.push_back({{"name", s.name}, {"description", s.description}, {"dim", c.dim}, {"hidden", c.hidden_dim},
                     {"layers", c.n_layers}, {"heads", c.n_heads}, {"kv_heads", c.n_kv_heads}, {"vocab", c.vocab_size},
                     {"context", c.context_length}, {"tied_output", c.tied_output}});
        if (!o->json) {
          fmt::print("{:<16} dim {:>5}  ffn {:>5}  layers {:>2}  heads {:>2}/{:<2}  vocab {:>6}  {}\n", s.name, c.dim,
                     c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size, s.description);
        }
      }
      if (o->json) fmt::print("{}\n", j.dump(2));
      return 0;
    }
    if (o->s.shape.empty() || o->s.output.empty()) throw Error("synth: give --shape and -o FILE.gguf (or --list)");
    std::unique_ptr<Progress> progress;
    o->s.progress = [&](int64_t i, int64_t n, uint64_t bytes, const std::string& name) {
      if (!progress) progress = std::make_unique<Progress>("synth", n, "tensors");
      progress->update(i, fmt::format("{:.1f} MB written{}{}", bytes / 1e6, name.empty() ? "" : ", ", name));
    };
    const SynthReport r = synth_model(o->s);
    if (progress) progress->finish(fmt::format("{:.1f} M parameters/s", r.parameters / 1e6 / r.seconds));
    if (o->json) {
      nlohmann::ordered_json j{{"output", o->s.output}, {"shape", o->s.shape}, {"format", o->s.format},
                               {"seed", o->s.seed}, {"parameters", r.parameters}, {"file_bytes", r.file_bytes},
                               {"seconds", r.seconds}};
      fmt::print("{}\n", j.dump(2));
      return 0;
    }
    fmt::print(stderr, "\n{}: {} in {}, {:.3f} B parameters, {} bytes, {:.1f} s\n", o->s.output, o->s.shape, o->s.format,
               r.parameters / 1e9, r.file_bytes, r.seconds);
    return 0;
  };
}

}  // namespace lowbit::cli
