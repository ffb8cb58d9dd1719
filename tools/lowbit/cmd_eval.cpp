// `lowbit eval BASE QUANT... -f TEXT [-c N] [--json | --markdown] [--plot FILE.svg|.png]
// [--html FILE] [--checkpoint FILE [--resume]]`: the comparison table, a plot of KLD against size, and an HTML report.
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "lowbit/atomic_file.h"
#include "lowbit/eval_report.h"
#include "lowbit/evaluate.h"
#include "lowbit/progress.h"

namespace lowbit::cli {

Runner register_eval(CLI::App& app) {
  auto* sub = app.add_subcommand("eval", "compare quantized models with their base: size, bpw, ppl, KLD, top-1, speed");
  struct Options {
    std::string base;
    std::vector<std::string> quantized;
    EvalOptions e;
    std::string kv_caches = "f32";
    std::string plot, html;
    bool json = false, markdown = false;
  };
  auto o = std::make_shared<Options>();
  sub->add_option("base", o->base, "the unquantized model")->required();
  sub->add_option("quantized", o->quantized, "quantized models (GGUF files, folders, ...)")->required();
  sub->add_option("-f,--file", o->e.text_path, "evaluation text, read as raw bytes")->required();
  sub->add_option("-c,--ctx-size", o->e.n_ctx, "tokens per chunk (at least 4, at most the base model's context)");
  sub->add_option("--chunks", o->e.max_chunks, "score at most this many chunks (default: all)")->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  sub->add_option("--gen-tokens", o->e.gen_tokens, "greedy tokens generated to measure speed")->check(CLI::NonNegativeNumber);
  sub->add_option("--tokenizer", o->e.tokenizer, "tokenizer .bin for llama2.c checkpoints");
  sub->add_option("--kv-cache", o->kv_caches,
                  "KV caches each quantized model runs with, comma-separated, ':rot' for a Hadamard rotation "
                  "(f32, f16, bf16, q8_0, q4_0, int8, fp8_e4m3, fp8_e5m2; e.g. f16,q4_0,q4_0:rot)");
  sub->add_option("--act", o->e.act, "activations of the quantized models' block linears (default: as each model records them; the base runs float): none, int8 (per token; int8 GEMM with int8 per-channel weights), llm_int8 (int8 with outlier columns in float), fp8_e4m3, fp8_e5m2; int8_static, fp8_e4m3_static (each linear's input_scale)");
  sub->add_option("--threshold", o->e.threshold, "LLM.int8(): input columns above this magnitude stay float");
  sub->add_option("--task", o->e.task_path, "a multiple-choice task (JSONL, HellaSwag's keys; lowbit task make) to score every model on");
  sub->add_option("--by-position", o->e.by_position, "also KLD and top-1 by position in the context, in this many buckets")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  sub->add_option("--plot", o->plot, "also draw mean KLD (log scale) against bits per weight into FILE.svg or FILE.png");
  sub->add_option("--html,-o", o->html, "also write one self-contained HTML report (plots and table) to FILE");
  auto* checkpoint = sub->add_option("--checkpoint", o->e.checkpoint.path, "keep the finished rows, the base's logits and the running pass in FILE (and FILE.logits, FILE.pass), so that a killed run can be continued with --resume; they go when the table is complete");
  sub->add_option("--checkpoint-every", o->e.checkpoint.every_seconds, "with --checkpoint: save the running pass every this many seconds (default 30; rows are saved as they finish)")
      ->check(CLI::NonNegativeNumber)->needs(checkpoint);
  sub->add_flag("--resume", o->e.checkpoint.resume, "continue a killed run from its --checkpoint FILE (same models, text and options): the rows done are kept, the running pass continues")
      ->needs(checkpoint);
  auto* json = sub->add_flag("--json", o->json, "machine-readable output");
  sub->add_flag("--markdown", o->markdown, "a markdown table")->excludes(json);
  return [o]() {
    o->e.kv_caches = parse_eval_kv_caches(o->kv_caches);
    std::unique_ptr<Progress> progress;
    o->e.status = [&](const std::string& s) {
      if (progress) progress->finish();
      progress.reset();
      fmt::print(stderr, "eval: {}\n", s);
    };
    o->e.progress = [&](int64_t done, int64_t total, double ppl) {
      if (!progress) progress = std::make_unique<Progress>("eval", total, "chunks");
      progress->update(done, fmt::format("ppl {:.4f}", ppl));
    };
    const auto rows = evaluate_models(o->base, o->quantized, o->e);
    if (!o->plot.empty()) write_kld_size_plot(o->plot, rows);
    if (!o->html.empty()) {
      AtomicFile f(o->html);
      const std::string page = eval_report_html(rows, o->base, o->e.text_path);
      f.write(page.data(), page.size());
      f.commit();
    }
    if (o->json) {
      const nlohmann::ordered_json out = eval_rows_json(rows);
      fmt::print("{}\n", out.dump(2));
      return 0;
    }
    fmt::print("{}", format_eval_table(rows, o->markdown));
    if (const std::string positions = format_position_table(rows, o->markdown); !positions.empty()) fmt::print("\n{}", positions);
    return 0;
  };
}

}  // namespace lowbit::cli
