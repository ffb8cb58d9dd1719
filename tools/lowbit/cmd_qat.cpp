// `lowbit qat MODEL --format F --data TEXT -o OUT [--method efficientqat|ste]`:
// quantization-aware training of the decoder linears into F, then the real quantized model
// written (a folder, or a .gguf file where F or its exact ggml twin has a GGUF type), with
// token_embd and output in --embeddings. Progress per stage with loss, rate and ETA.
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "lowbit/engine.h"
#include "lowbit/error.h"
#include "lowbit/exact_gguf.h"
#include "lowbit/output_guard.h"
#include "lowbit/progress.h"
#include "lowbit/qat.h"
#include "lowbit/quantize.h"

namespace lowbit::cli {
namespace {

// GGUF output: each decoder linear in a format with no GGUF type becomes its exact ggml
// twin (int4 groups of 32 -> q4_0/q4_1, int8 -> q8_0); q4_1 mins not exact in fp16 are
// rounded, with a warning.
void to_gguf_types(Model& m) {
  int rounded = 0;
  for (LayerWeights& l : m.layers) {
    for (Weight* w : {&l.attn_q, &l.attn_k, &l.attn_v, &l.attn_output, &l.ffn_gate, &l.ffn_up, &l.ffn_down}) {
      if (w->format->gguf_type != kNotGguf) continue;
      if (auto exact = exact_gguf_weight(*w)) {
        *w = std::move(*exact);
      } else if (auto near = exact_gguf_weight(*w, true)) {
        *w = std::move(*near);
        ++rounded;
      } else {
        throw Error("format has no GGUF type and no exact ggml twin (int4/int8 groups of 32 have one): write a folder", {.tensor = w->name,
                    .value = std::string(w->format->name)});
      }
    }
  }
  if (rounded > 0) warn(std::to_string(rounded) + " linears written as q4_1 with their mins -scale*zero rounded to fp16 (not exact)");
}

}  // namespace

Runner register_qat(CLI::App& app) {
  auto* sub = app.add_subcommand("qat", "quantization-aware training (EfficientQAT or STE) into a format, written as the quantized model");
  struct Options {
    std::string model, data, out, tokenizer, format, method = "efficientqat", embeddings = "f16", loss = "kd";
    QatOptions qat;
    float lr = 0;
    bool checkpointing = false, json = false;
  };
  auto o = std::make_shared<Options>();
  sub->add_option("model", o->model, "HF folder, .gguf file or llama2.c checkpoint")->required();
  sub->add_option("--format,-f", o->format, "the decoder linears' format: int2_g64_asym, int3_g64_asym, int4_g128_asym, q4_0, nf4, ...")->required();
  sub->add_option("--data", o->data, "training text, read as raw bytes")->required();
  sub->add_option("-o,--output", o->out, "output folder, or .gguf file")->required();
  sub->add_option("--method", o->method, "efficientqat (default; intN formats) or ste");
  sub->add_option("--embeddings", o->embeddings, "format of token_embd and output (default f16)");
  sub->add_option("--tokenizer", o->tokenizer, "tokenizer .bin for llama2.c checkpoints");
  sub->add_option("--samples", o->qat.block_ap.samples, "Block-AP: calibration windows (default 128)")->check(CLI::PositiveNumber);
  sub->add_option("--block-seq-len", o->qat.block_ap.seq_len, "Block-AP: tokens per window (default 256, at most the context)")->check(CLI::PositiveNumber);
  sub->add_option("--block-epochs", o->qat.block_ap.epochs, "Block-AP: epochs per block (default 4)")->check(CLI::PositiveNumber);
  sub->add_option("--block-batch", o->qat.block_ap.batch, "Block-AP: windows per step (default 2)")->check(CLI::PositiveNumber);
  sub->add_option("--weight-lr", o->qat.block_ap.weight_lr, "Block-AP: weights' learning rate (default 1e-4)");
  sub->add_option("--scale-lr", o->qat.block_ap.scale_lr, "Block-AP: scales' and zeros' learning rate (default 5e-4)");
  sub->add_option("--steps", o->qat.train.steps, "end-to-end steps: E2E-QP's, or ste's (default 200)")->check(CLI::NonNegativeNumber);
  sub->add_option("--batch", o->qat.train.batch, "end to end: windows per batch (default 4)")->check(CLI::PositiveNumber);
  sub->add_option("--seq-len", o->qat.train.seq_len, "end to end: tokens per window (default 128)")->check(CLI::PositiveNumber);
  sub->add_option("--grad-accum", o->qat.train.grad_accum, "end to end: batches per step (default 1)")->check(CLI::PositiveNumber);
  sub->add_option("--lr", o->lr, "end to end: peak learning rate (default 1e-4)");
  sub->add_option("--warmup", o->qat.train.warmup, "end to end: warmup steps, then cosine (default 20)")->check(CLI::NonNegativeNumber);
  sub->add_option("--clip", o->qat.train.clip, "end to end: max global gradient norm, 0 for none (default 1)");
  sub->add_option("--seed", o->qat.train.seed, "seed of the window draws (default 0)");
  sub->add_option("--loss", o->loss, "end to end: kd (default: KL to the float model's next-token distribution) or ce (the data's next token, as the paper)")
      ->check(CLI::IsMember({"kd", "ce"}));
  sub->add_flag("--checkpointing", o->checkpointing, "activation checkpointing per block: less memory, one more forward");
  sub->add_flag("--json", o->json, "print the result as JSON on stdout");
  return [o]() {
    QatOptions& q = o->qat;
    q.format = &format_by_name(o->format);
    q.method = qat_method_by_name(o->method).name;
    q.block_ap.seed = q.train.seed;
    q.train.adamw.lr = o->lr > 0 ? o->lr : 1e-4f;
    q.train.adamw.weight_decay = 0.0f;
    q.train.source = o->data;
    if (q.train.warmup > q.train.steps) q.train.warmup = q.train.steps;
    format_by_name(o->embeddings);  // refused before any work
    const std::string text = read_text_file(o->data);
    std::unique_ptr<Progress> progress;
    std::string stage;
    q.progress = [&](const std::string& s, int64_t done, int64_t total, float loss) {
      if (s != stage) {
        if (progress) progress->finish("");
        progress = std::make_unique<Progress>("qat " + s, total, "steps");
        stage = s;
      }
      progress->update(done, fmt::format("loss {:.5g}", loss));
    };
    QatReport report;
    QuantizeOptions qo;
    qo.input = o->model;
    qo.output = o->out;
    qo.tokenizer = o->tokenizer;
    qo.recipe_data = Recipe{"qat:" + o->format, "decoder linears trained into " + o->format + " (lowbit qat --method " + q.method + ")", "keep",
                            {{"token_embd", "", o->embeddings, "", "", {}}, {"output", "", o->embeddings, "", "", {}}}};
    qo.transform = [&](Model& m) {
      refuse_overwriting_inputs(o->out, inputs_of(m, {o->data}));
      const auto tokens = m.tokenizer->encode(text, true);
      TrainModel tm(m);
      tm.set_checkpointing(o->checkpointing);
      std::unique_ptr<Engine> teacher;  // the float model, before export_to replaces its weights
      if (o->loss == "kd") {
        teacher = std::make_unique<Engine>(m, q.train.seq_len);
        q.train.teacher = [&](std::span<const int32_t> inputs, int64_t B, int64_t T, float* logits) {
          for (int64_t b = 0; b < B; ++b) teacher->forward(inputs.subspan(b * T, T), 0, logits + b * T * m.config.vocab_size);
        };
      }
      report = quantization_aware_training(tm, tokens, q);
      teacher.reset();
      if (progress) progress->finish(fmt::format("{:.0f} tokens/s", report.train.tokens_per_second));
      progress.reset();
      tm.export_to(m);
      if (o->out.ends_with(".gguf")) to_gguf_types(m);
    };
    const QuantizeReport r = quantize_model(qo);
    if (o->json) {
      nlohmann::ordered_json j{{"output", o->out}, {"format", o->format}, {"method", q.method}, {"loss", o->loss}, {"block_mse_rtn", report.block_mse_rtn},
                               {"block_mse_trained", report.block_mse_trained}, {"block_ap_seconds", report.block_seconds},
                               {"e2e_losses", report.train.losses}, {"e2e_seconds", report.train.seconds},
                               {"e2e_tokens_per_second", report.train.tokens_per_second}, {"bits_per_weight", r.bits_per_weight()},
                               {"file_bytes", r.file_bytes}};
      fmt::print("{}\n", j.dump(2));
      return 0;
    }
    for (size_t l = 0; l < report.block_mse_rtn.size(); ++l) {
      fmt::print(stderr, "block {}: output MSE {:.4g} (round to nearest) -> {:.4g} (Block-AP)\n", l, report.block_mse_rtn[l], report.block_mse_trained[l]);
    }
    const auto& losses = report.train.losses;
    const std::string block_ap = report.block_mse_rtn.empty() ? "" : fmt::format("Block-AP {:.1f} s, ", report.block_seconds);
    fmt::print(stderr, "{} -> {} ({}, {}): {}end to end {} steps {:.1f} s, {} loss {:.4f} -> {:.4f}; {:.3f} bpw, {} bytes\n", o->model, o->out,
               o->format, q.method, block_ap, losses.size(), report.train.seconds, o->loss, losses.empty() ? 0.0f : losses.front(),
               losses.empty() ? 0.0f : losses.back(), r.bits_per_weight(), r.file_bytes);
    return 0;
  };
}

}  // namespace lowbit::cli
