// Memory and speed of one training step (src/train/): QLoRA (decoder linears frozen in a
// quantized format, rank-8 LoRA on all seven linears, AdamW on the adapters) against a full
// float fine-tuning step (every parameter trainable, AdamW state for all). Reports the
// resident memory before the step (weights, after loading and rounding) and at the step's
// peak (/proc/self/status VmHWM, reset with clear_refs), and training tokens/s over --steps
// steps after one warm-up step. JSON on stdout.
// --checkpointing keeps one block's activations at a time (the backward runs each block's
// forward again).
//   train_step MODEL [--mode qlora|full] [--base nf4_dq] [--seq 128] [--batch 1] [--steps 2] [--checkpointing]
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <random>

#include "eval/process_memory.h"
#include "lowbit/model_io.h"
#include "lowbit/train.h"

int main(int argc, char** argv) {
  using namespace lowbit;
  CLI::App app("one training step's peak memory and speed");
  std::string model, mode = "qlora", base = "nf4_dq";
  int64_t seq = 128, batch = 1, steps = 2;
  bool checkpointing = false;
  app.add_option("model", model)->required();
  app.add_option("--mode", mode, "qlora or full");
  app.add_option("--base", base, "QLoRA's frozen format");
  app.add_option("--seq", seq);
  app.add_option("--batch", batch);
  app.add_option("--steps", steps);
  app.add_flag("--checkpointing", checkpointing, "activation checkpointing per block");
  CLI11_PARSE(app, argc, argv);
  const Model m = load_model(model);
  const Format* frozen = mode == "qlora" ? &format_by_name(base) : nullptr;
  TrainModel tm(m, frozen);
  if (mode == "qlora") tm.add_lora({});
  tm.set_checkpointing(checkpointing);
  std::mt19937 rng(1);
  std::vector<int32_t> tokens(static_cast<size_t>(batch * (seq + 1)));
  for (int32_t& t : tokens) t = static_cast<int32_t>(rng() % static_cast<uint32_t>(m.config.vocab_size));
  AdamW opt({});
  const ResidentMemory before = resident_memory();
  reset_peak_resident_memory();
  tm.zero_grad();
  tm.forward_backward(tokens, batch, seq);
  opt.step(tm.params());
  const ResidentMemory after = resident_memory();
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t s = 0; s < steps; ++s) {
    tm.zero_grad();
    tm.forward_backward(tokens, batch, seq);
    opt.step(tm.params());
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  int64_t trainable = 0;
  for (const TrainTensor& t : tm.params()) trainable += t.trainable ? static_cast<int64_t>(t.value.size()) : 0;
  const nlohmann::ordered_json j{{"model", model}, {"mode", mode}, {"base", mode == "qlora" ? base : "f32"}, {"parameters", m.parameter_count()},
                                 {"trainable", trainable}, {"seq", seq}, {"batch", batch}, {"checkpointing", checkpointing}, {"rss_before_step_mb", before.now / 1e6},
                                 {"peak_rss_step_mb", after.peak / 1e6}, {"tokens_per_second", steps * batch * seq / secs}};
  fmt::print("{}\n", j.dump(2));
  return 0;
}
