// `lowbit perplexity MODEL -f TEXT -c N_CTX [--checkpoint FILE [--resume]]`: llama.cpp's
// perplexity, optionally saving logits for later KLD runs or comparing against saved ones.
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "lowbit/lora.h"
#include "lowbit/error.h"
#include "lowbit/model_io.h"
#include "lowbit/output_guard.h"
#include "lowbit/perplexity.h"
#include "lowbit/progress.h"

namespace lowbit::cli {

Runner register_perplexity(CLI::App& app) {
  auto* sub = app.add_subcommand("perplexity", "perplexity (and KL-divergence) on a text, as llama-perplexity");
  struct Options {
    std::string model, file, tokenizer, save_logits, kld_base, kv_cache = "f32", act, lora, checkpoint;
    int64_t n_ctx = 512, chunks = 0;
    double checkpoint_every = 30;
    bool json = false, kv_rotate = false, resume = false;
    float threshold = 6.0f;
  };
  auto o = std::make_shared<Options>();
  sub->add_option("model", o->model, "HF folder, .gguf file or llama2.c checkpoint")->required();
  sub->add_option("-f,--file", o->file, "text file, read as raw bytes")->required();
  sub->add_option("-c,--ctx-size", o->n_ctx, "tokens per chunk (at least 4, at most the model's context)");
  sub->add_option("--chunks", o->chunks, "score at most this many chunks (default: all)")->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  sub->add_option("--save-logits", o->save_logits, "save what a later --kl-divergence run needs");
  sub->add_option("--kl-divergence", o->kld_base, "compare with logits saved by --save-logits");
  sub->add_option("--tokenizer", o->tokenizer, "tokenizer .bin for llama2.c checkpoints");
  sub->add_option("--kv-cache", o->kv_cache, "KV cache type: f32, f16, bf16, q8_0, q4_0, int8, fp8_e4m3, fp8_e5m2 (keys after RoPE)");
  sub->add_flag("--kv-rotate", o->kv_rotate, "Hadamard-rotate each K/V row before rounding it");
  sub->add_option("--lora", o->lora, "a PEFT LoRA adapter folder, merged into the model in memory");
  sub->add_option("--act", o->act, "activations of the block linears (default: as the model records them): none, int8 (per token; int8 GEMM with int8 per-channel weights), llm_int8 (int8 with outlier columns in float), fp8_e4m3, fp8_e5m2; int8_static, fp8_e4m3_static (the model's input_scale per linear)");
  sub->add_option("--threshold", o->threshold, "LLM.int8(): input columns above this magnitude stay float");
  auto* checkpoint = sub->add_option("--checkpoint", o->checkpoint, "keep the sums so far (and the partial --save-logits file) in FILE, so that a killed run can be continued with --resume; FILE goes when the run ends");
  sub->add_option("--checkpoint-every", o->checkpoint_every, "with --checkpoint: save every this many seconds (default 30)")
      ->check(CLI::NonNegativeNumber)->needs(checkpoint);
  sub->add_flag("--resume", o->resume, "continue a killed run from its --checkpoint FILE (same model, text and options): the same numbers and logits file as an uninterrupted run")
      ->needs(checkpoint);
  sub->add_flag("--json", o->json, "machine-readable output");
  return [o]() {
    Model m = open_model(o->model, o->tokenizer);
    if (!o->lora.empty()) apply_lora_adapter(m, o->lora);
    if (!o->save_logits.empty()) refuse_overwriting_inputs(o->save_logits, inputs_of(m, {o->file, o->kld_base}));
    if (!o->checkpoint.empty()) refuse_overwriting_inputs(o->checkpoint, inputs_of(m, {o->file, o->kld_base, o->save_logits}));
    const auto tokens = m.tokenizer->encode(read_text_file(o->file), true);
    PerplexityOptions p;
    p.n_ctx = o->n_ctx;
    p.max_chunks = o->chunks;
    p.save_logits_path = o->save_logits;
    p.kld_base_path = o->kld_base;
    p.kv = kv_cache_options(o->kv_cache, o->kv_rotate);
    p.act = act_quant_for(m, o->act, o->threshold);
    p.checkpoint = {.path = o->checkpoint, .resume = o->resume, .every_seconds = o->checkpoint_every};
    std::unique_ptr<Progress> progress;
    p.progress = [&](int64_t done, int64_t total, double ppl) {
      if (!progress) progress = std::make_unique<Progress>("perplexity", total, "chunks");
      progress->update(done, fmt::format("ppl {:.4f}", ppl));
    };
    const auto r = compute_perplexity(m, tokens, p);
    if (o->json) {
      nlohmann::ordered_json j{{"model", o->model}, {"file", o->file}, {"n_ctx", r.n_ctx}, {"tokens", r.n_tokens},
                               {"chunks", r.n_chunks}, {"scored_tokens", r.n_scored}, {"ppl", r.ppl},
                               {"ppl_stderr", r.ppl_stderr}, {"seconds", r.seconds}, {"tokens_per_second", r.tokens_per_second},
                               {"kv_cache", o->kv_cache}, {"kv_rotate", o->kv_rotate}, {"act", p.act.name},
                               {"resume", r.resume_note}};
      if (r.kld) {
        const auto& k = *r.kld;
        j["kld"] = {{"mean", k.mean}, {"stderr", k.stderr_mean}, {"max", k.max}, {"p99_9", k.p999}, {"p99", k.p99},
                    {"p95", k.p95}, {"p90", k.p90}, {"median", k.median}, {"p10", k.p10}, {"p5", k.p05}, {"p1", k.p01},
                    {"min", k.min}, {"top1_agreement", k.top1_agreement}, {"top1_stderr", k.top1_stderr},
                    {"base_ppl", k.base_ppl}, {"delta_ppl", k.delta_ppl}};
      }
      if (!r.outliers.empty()) {
        for (const auto& [name, st] : r.outliers) j["outlier_columns"][name] = {{"outlier", st.outlier_columns}, {"columns", st.columns}};
      }
      fmt::print("{}\n", j.dump(2));
      return 0;
    }
    if (!r.resume_note.empty()) fmt::print(stderr, "perplexity: {}\n", r.resume_note);
    fmt::print("{} tokens, {} chunks of {}, {} scored ({:.1f} tokens/s)\n", r.n_tokens, r.n_chunks, r.n_ctx, r.n_scored,
               r.tokens_per_second);
    fmt::print("PPL = {:.4f} +/- {:.5f}\n", r.ppl, r.ppl_stderr);
    if (!r.outliers.empty()) {  // LLM.int8(): the share of input columns kept in float, per linear
      std::string line;
      for (const auto& [name, st] : r.outliers) {
        line += fmt::format("{}{} {:.2f}%", line.empty() ? "" : ", ", name, 100.0 * static_cast<double>(st.outlier_columns) / std::max<int64_t>(1, st.columns));
      }
      fmt::print("LLM.int8() outlier columns: {}\n", line);
    }
    if (r.kld) {
      const auto& k = *r.kld;
      fmt::print("base PPL = {:.4f}, delta PPL = {:+.4f}\n", k.base_ppl, k.delta_ppl);
      fmt::print("Mean KLD: {:.6f} +/- {:.6f}\n", k.mean, k.stderr_mean);
      fmt::print("KLD percentiles: max {:.6f}, 99.9% {:.6f}, 99% {:.6f}, 95% {:.6f}, 90% {:.6f}, median {:.6f}, "
                 "10% {:.6f}, 5% {:.6f}, 1% {:.6f}, min {:.6f}\n",
                 k.max, k.p999, k.p99, k.p95, k.p90, k.median, k.p10, k.p05, k.p01, k.min);
      fmt::print("Same top token: {:.3f} +/- {:.3f} %\n", 100 * k.top1_agreement, 100 * k.top1_stderr);
    }
    return 0;
  };
}

}  // namespace lowbit::cli
