// `lowbit imatrix MODEL -f TEXT -o FILE [-c 512] [--chunks N] [--resume]`: collects
// llama.cpp's importance matrix (sum of x^2 per input column of every layer matrix).
// `mpirun -np N lowbit imatrix ...` shares the chunks among N ranks; the file is the same.
#include <nlohmann/json.hpp>
#include <fmt/format.h>

#include "commands.h"
#include "lowbit/cluster.h"
#include "lowbit/imatrix.h"
#include "lowbit/model_io.h"
#include "lowbit/output_guard.h"
#include "lowbit/progress.h"

namespace lowbit::cli {

Runner register_imatrix(CLI::App& app) {
  auto* sub = app.add_subcommand("imatrix", "collect an importance matrix on calibration text");
  struct Options {
    std::string model, file, out, tokenizer;
    int64_t n_ctx = 512, chunks = 0;
    bool resume = false, json = false;
    double checkpoint_every = 30;
  };
  auto o = std::make_shared<Options>();
  sub->add_option("model", o->model, "HF folder, .gguf file or llama2.c checkpoint")->required();
  sub->add_option("-f,--file", o->file, "calibration text, read as raw bytes")->required();
  sub->add_option("-o,--output", o->out, "output file (GGUF imatrix, as llama.cpp writes)")->required();
  sub->add_option("-c,--ctx-size", o->n_ctx, "tokens per chunk (at least 4, at most the model's context)");
  sub->add_option("--chunks", o->chunks, "use at most this many chunks (default: all)")->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  sub->add_option("--tokenizer", o->tokenizer, "tokenizer .bin for llama2.c checkpoints");
  sub->add_option("--checkpoint-every", o->checkpoint_every, "save the sums so far to OUTPUT.checkpoint every this many seconds (default 30)")
      ->check(CLI::PositiveNumber);
  sub->add_flag("--resume", o->resume, "continue a killed run from OUTPUT.checkpoint (same model, text and options): "
                "the result equals an uninterrupted run's");
  sub->add_flag("--json", o->json, "print the summary as JSON on stdout");
  return [o]() {
    const Model m = open_model(o->model, o->tokenizer);
    refuse_overwriting_inputs(o->out, inputs_of(m, {o->file}));
    const auto tokens = m.tokenizer->encode(read_text_file(o->file), true);
    std::unique_ptr<Progress> progress;
    std::string note;
    const StatsCheckpoint checkpoint{.path = o->out + ".checkpoint", .resume = o->resume, .every_seconds = o->checkpoint_every};
    const auto im = collect_imatrix(m, tokens, o->n_ctx, o->chunks, o->file, [&](int64_t done, int64_t total) {
      if (!progress) progress = std::make_unique<Progress>("imatrix", total, "chunks");
      progress->update(done);
    }, checkpoint, &note);
    if (!cluster().is_root()) return 0;  // under mpirun, rank 0 holds the sums and writes them
    im.save(o->out);
    if (!note.empty()) fmt::print(stderr, "{}\n", note);
    if (o->json) {
      fmt::print("{}\n", nlohmann::ordered_json{{"output", o->out}, {"entries", im.entries.size()}, {"chunks", im.chunk_count},
                                                {"chunk_size", im.chunk_size}, {"resume", note}}.dump(2));
    }
    fmt::print(stderr, "wrote {}: {} entries from {} chunks of {} tokens\n", o->out, im.entries.size(), im.chunk_count, im.chunk_size);
    return 0;
  };
}

}  // namespace lowbit::cli
