// `lowbit eval`: one table comparing quantized models with their base on a text: file
// size, bits per weight, perplexity, delta-ppl, KLD (mean, 99th percentile), top-1
// agreement and generation speed. The base's logits are computed once and every model is
// scored on the base tokenizer's tokens (KLD needs the same tokens).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "lowbit/by_position.h"
#include "lowbit/engine.h"
#include "lowbit/stats_checkpoint.h"

namespace lowbit {

struct EvalRow {
  std::string model;        // the path given
  bool is_base = false;
  uint64_t file_bytes = 0;  // on disk (a folder: its files)
  double bits_per_weight = 0;
  double ppl = 0, ppl_stderr = 0, delta_ppl = 0;
  double kld_mean = 0, kld_stderr = 0, kld_p99 = 0, top1 = 1;
  double gen_tokens_per_second = 0;
  double eval_tokens_per_second = 0;  // the perplexity run's (prefill) tokens per second
  // Resident memory the model added to the process at its peak (weights paged in, KV
  // cache, scratch): the peak while it loads and runs, less the size before; 0 where the
  // peak cannot be measured.
  uint64_t peak_rss_bytes = 0;
  std::string kv_cache = "f32";       // the KV cache it ran with ("q4_0+rot": rotated)
  std::string act = "none";           // its activations (--act)
  double outlier_share = -1;          // LLM.int8(): share of input columns kept in float (-1: not run)
  uint64_t kv_bytes_per_token = 0;    // that cache's bytes per position
  std::vector<PositionBucket> by_position;  // with --by-position (not for the base)
  // With --task: accuracy (llama.cpp's HellaSwag rule), its standard error, and the share
  // of items where the model chose what the base chose.
  int64_t task_items = 0;
  double task_accuracy = 0, task_stderr = 0, task_agreement = 1;
};

// One KV cache setting of `eval --kv-cache`: "q4_0", "q4_0:rot".
struct EvalKvCache {
  std::string label;
  KvCacheOptions options;
};
// Parses "TYPE[:rot],...": the KV caches each quantized model runs with.
std::vector<EvalKvCache> parse_eval_kv_caches(const std::string& list);

struct EvalOptions {
  std::string text_path;
  int64_t n_ctx = 512;
  int64_t max_chunks = 0;
  int64_t gen_tokens = 64;         // greedy tokens generated to time decoding
  std::string tokenizer;           // llama2.c tokenizer .bin, when needed
  // Every quantized model is scored once per entry (the base always with an f32 cache).
  std::vector<EvalKvCache> kv_caches{{"f32", {}}};
  int64_t by_position = 0;         // > 0: KLD and top-1 in this many position buckets
  std::string act;                 // --act for the quantized models ("": each model's own; the base: float)
  float threshold = 6.0f;          // --threshold of --act llm_int8
  std::string task_path;           // a multiple-choice task (task.h) every model is scored on
  std::function<void(const std::string&)> status;  // one line per step, for stderr
  // Each perplexity pass's chunks: (done, total, running ppl).
  std::function<void(int64_t, int64_t, double)> progress;
  // A path: the rows done and the running pass are kept there (eval_checkpoint.h), so that
  // a killed comparison run again with resume skips them, to the same table. One process.
  StatsCheckpoint checkpoint;
};

std::vector<EvalRow> evaluate_models(const std::string& base, const std::vector<std::string>& quantized,
                                     const EvalOptions& options);

// Plain-text or markdown table.
std::string format_eval_table(const std::vector<EvalRow>& rows, bool markdown);
// The by-position table: one row per model, "KLD (top-1 %)" per position bucket; empty
// without --by-position.
std::string format_position_table(const std::vector<EvalRow>& rows, bool markdown);

}  // namespace lowbit
