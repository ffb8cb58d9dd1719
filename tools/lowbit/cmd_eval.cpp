// `lowbit eval BASE QUANT... -f TEXT [-c N] [--json | --markdown]`: the comparison table.
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "lowbit/evaluate.h"

namespace lowbit::cli {

Runner register_eval(CLI::App& app) {
  auto* sub = app.add_subcommand("eval", "compare quantized models with their base: size, bpw, ppl, KLD, top-1, speed");
  struct Options {
    std::string base;
    std::vector<std::string> quantized;
    EvalOptions e;
    std::string kv_caches = "f32";
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
  auto* json = sub->add_flag("--json", o->json, "machine-readable output");
  sub->add_flag("--markdown", o->markdown, "a markdown table")->excludes(json);
  return [o]() {
    o->e.kv_caches = parse_eval_kv_caches(o->kv_caches);
    o->e.status = [](const std::string& s) { fmt::print(stderr, "eval: {}\n", s); };
    const auto rows = evaluate_models(o->base, o->quantized, o->e);
    if (o->json) {
      nlohmann::ordered_json out = nlohmann::ordered_json::array();
      for (const auto& r : rows) {
        out.push_back({{"model", r.model}, {"base", r.is_base}, {"file_bytes", r.file_bytes},
                       {"bits_per_weight", r.bits_per_weight}, {"ppl", r.ppl}, {"ppl_stderr", r.ppl_stderr},
                       {"delta_ppl", r.delta_ppl}, {"kld_mean", r.kld_mean}, {"kld_stderr", r.kld_stderr},
                       {"kld_p99", r.kld_p99}, {"top1_agreement", r.top1}, {"gen_tokens_per_second", r.gen_tokens_per_second},
                       {"act", r.act}, {"outlier_share", r.outlier_share}, {"kv_cache", r.kv_cache}, {"kv_bytes_per_token", r.kv_bytes_per_token},
                       {"eval_tokens_per_second", r.eval_tokens_per_second}, {"peak_rss_bytes", r.peak_rss_bytes}});
        if (r.task_items > 0) {
          out.back()["task"] = {{"items", r.task_items}, {"accuracy", r.task_accuracy}, {"accuracy_stderr", r.task_stderr},
                                {"agreement_with_base", r.task_agreement}};
        }
        if (!r.by_position.empty()) {
          auto& buckets = out.back()["by_position"] = nlohmann::ordered_json::array();
          for (const PositionBucket& b : r.by_position) {
            buckets.push_back({{"first", b.first}, {"last", b.last}, {"tokens", b.tokens}, {"kld_mean", b.kld_mean},
                               {"kld_stderr", b.kld_stderr}, {"top1_agreement", b.top1}});
          }
        }
      }
      fmt::print("{}\n", out.dump(2));
      return 0;
    }
    fmt::print("{}", format_eval_table(rows, o->markdown));
    if (const std::string positions = format_position_table(rows, o->markdown); !positions.empty()) fmt::print("\n{}", positions);
    return 0;
  };
}

}  // namespace lowbit::cli
