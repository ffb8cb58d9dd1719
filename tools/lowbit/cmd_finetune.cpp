// `lowbit finetune MODEL --data TEXT -o ADAPTER [--lora-r 8 --lora-alpha 16 --targets
// q,k,v,o,gate,up,down --base nf4_dq]`: QLoRA. The decoder linears are rounded once to the
// base format and frozen; LoRA adapters train on windows of the text; the adapters are
// written in PEFT's layout. Progress with loss, rate and ETA on stderr.
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "lowbit/error.h"
#include "lowbit/lora.h"
#include "lowbit/output_guard.h"
#include "lowbit/progress.h"
#include "lowbit/train.h"

namespace lowbit::cli {

Runner register_finetune(CLI::App& app) {
  auto* sub = app.add_subcommand("finetune", "QLoRA: train LoRA adapters on a frozen quantized base, written as a PEFT adapter folder");
  struct Options {
    std::string model, data, out, tokenizer, base = "nf4_dq", targets = "q,k,v,o,gate,up,down";
    LoraOptions lora;
    TrainOptions train;
    float lr = 2e-4f, weight_decay = 0.0f;
    bool json = false;
  };
  auto o = std::make_shared<Options>();
  sub->add_option("model", o->model, "HF folder, .gguf file or llama2.c checkpoint")->required();
  sub->add_option("--data", o->data, "training text, read as raw bytes")->required();
  sub->add_option("-o,--output", o->out, "the adapter folder to write (adapter_config.json, adapter_model.safetensors)")->required();
  sub->add_option("--tokenizer", o->tokenizer, "tokenizer .bin for llama2.c checkpoints");
  sub->add_option("--lora-r", o->lora.rank, "adapter rank (default 8)");
  sub->add_option("--lora-alpha", o->lora.alpha, "adapter scale numerator: y += (alpha / r) x Aᵀ Bᵀ (default 16)");
  sub->add_option("--targets", o->targets, "adapted linears, comma-separated from q,k,v,o,gate,up,down (default all)");
  sub->add_option("--base", o->base, "format the frozen decoder linears are rounded to (default nf4_dq; f32 for plain LoRA)");
  sub->add_option("--steps", o->train.steps, "optimizer steps (default 200)")->check(CLI::NonNegativeNumber);
  sub->add_option("--batch", o->train.batch, "windows per batch (default 4)")->check(CLI::PositiveNumber);
  sub->add_option("--seq-len", o->train.seq_len, "tokens per window (default 128)")->check(CLI::PositiveNumber);
  sub->add_option("--grad-accum", o->train.grad_accum, "batches per step (default 1)")->check(CLI::PositiveNumber);
  sub->add_option("--lr", o->lr, "peak learning rate (default 2e-4, QLoRA's)");
  sub->add_option("--warmup", o->train.warmup, "linear warmup steps, then cosine decay to 0.1 lr (default 20)")->check(CLI::NonNegativeNumber);
  sub->add_option("--weight-decay", o->weight_decay, "AdamW's decoupled weight decay (default 0)");
  sub->add_option("--clip", o->train.clip, "max global gradient norm, 0 for none (default 1)");
  sub->add_option("--seed", o->train.seed, "seed of the window draws (default 0)");
  sub->add_option("--save-every", o->train.save_every, "write a checkpoint (OUTPUT.checkpoint) every N steps and after the last")
      ->check(CLI::NonNegativeNumber);
  sub->add_flag("--resume", o->train.resume, "continue from OUTPUT.checkpoint (same options): ends as an uninterrupted run would");
  sub->add_flag("--json", o->json, "print the result as JSON on stdout");
  return [o]() {
    o->lora.targets.clear();
    for (size_t at = 0; at <= o->targets.size();) {
      const size_t comma = std::min(o->targets.find(',', at), o->targets.size());
      o->lora.targets.push_back(o->targets.substr(at, comma - at));
      at = comma + 1;
    }
    const Format& base = format_by_name(o->base);
    const Model m = open_model(o->model, o->tokenizer);
    refuse_overwriting_inputs(o->out, inputs_of(m, {o->data}));
    const auto tokens = m.tokenizer->encode(read_text_file(o->data), true);
    TrainModel tm(m, &base);
    tm.add_lora(o->lora);
    o->train.adamw.lr = o->lr;
    o->train.adamw.weight_decay = o->weight_decay;
    o->train.source = o->data;
    o->train.checkpoint = o->out + ".checkpoint";
    if (o->train.warmup > o->train.steps) o->train.warmup = o->train.steps;
    std::unique_ptr<Progress> progress;
    o->train.progress = [&](int64_t done, int64_t total, float loss, float lr) {
      if (!progress) progress = std::make_unique<Progress>("finetune", total, "steps");
      progress->update(done, fmt::format("loss {:.4f}, lr {:.2e}", loss, lr));
    };
    const TrainReport r = train_steps(tm, tokens, o->train);
    if (progress) progress->finish(fmt::format("{:.0f} tokens/s", r.tokens_per_second));
    save_peft_adapter(tm, o->out, o->model, o->base);
    int64_t trainable = 0;
    for (const TrainTensor& t : tm.params()) trainable += t.trainable ? static_cast<int64_t>(t.value.size()) : 0;
    if (o->json) {
      nlohmann::ordered_json j{{"output", o->out}, {"base", o->base}, {"rank", o->lora.rank}, {"alpha", o->lora.alpha},
                               {"trainable_parameters", trainable}, {"steps", o->train.steps}, {"resumed_from", r.resumed_from}, {"losses", r.losses},
                               {"seconds", r.seconds}, {"tokens_per_second", r.tokens_per_second}};
      fmt::print("{}\n", j.dump(2));
      return 0;
    }
    fmt::print(stderr, "{} -> {}: {} trainable parameters, steps {}-{}{}, loss {:.4f} -> {:.4f}, {:.1f} s ({:.0f} tokens/s)\n", o->model, o->out,
               trainable, r.resumed_from + 1, o->train.steps, r.resumed_from > 0 ? " (resumed)" : "", r.losses.empty() ? 0.0f : r.losses.front(),
               r.losses.empty() ? 0.0f : r.losses.back(), r.seconds, r.tokens_per_second);
    return 0;
  };
}

}  // namespace lowbit::cli
