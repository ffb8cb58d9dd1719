// Perplexity and KL-divergence as llama.cpp's llama-perplexity computes them: the token
// stream is cut into chunks of n_ctx, each chunk's first token replaced by BOS, and only
// the second half of each chunk scored (every scored token sees at least n_ctx/2 of
// context). A base run can save what KLD needs (LogitsFile); a later run of a quantized
// model on the same tokens reports KLD(base || quant), top-1 agreement and delta-ppl.
// A checkpoint (kind "perplexity") makes a long pass resumable (perplexity_checkpoint.h).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "lowbit/engine.h"
#include "lowbit/model.h"
#include "lowbit/stats_checkpoint.h"

namespace lowbit {

class LogitsFileWriter;
class LogitsFileReader;

struct KldStats {
  double mean = 0, stderr_mean = 0;
  // KLD percentiles: max, 99.9, 99, 95, 90, median, 10, 5, 1, min
  double max = 0, p999 = 0, p99 = 0, p95 = 0, p90 = 0, median = 0, p10 = 0, p05 = 0, p01 = 0, min = 0;
  double top1_agreement = 0, top1_stderr = 0;  // share of tokens whose argmax agrees
  double base_ppl = 0, delta_ppl = 0;
  int64_t tokens = 0;
};

struct PerplexityResult {
  double ppl = 0, ppl_stderr = 0, mean_nll = 0;
  int64_t n_chunks = 0, n_scored = 0, n_ctx = 0, n_tokens = 0;
  double seconds = 0, tokens_per_second = 0;
  std::optional<KldStats> kld;
  std::map<std::string, OutlierStats> outliers;  // LLM.int8(): per block linear
  std::string resume_note;  // with a checkpoint: what was found and continued
};

struct PerplexityOptions {
  int64_t n_ctx = 512;
  int64_t max_chunks = 0;             // 0: all
  std::string save_logits_path;       // write a LogitsFile for later KLD runs
  std::string kld_base_path;          // compare against this LogitsFile
  bool reference_kernels = false;     // matmul_ref instead of the fast kernels (Engine)
  bool reference_act_rounding = false;  // with it: the fast path's int8 activation rounding
  KvCacheOptions kv;                  // the KV cache's storage (--kv-cache, --kv-rotate)
  ActQuantOptions act;                // activations of the block linears (--act)
  // A long pass's sums (and the partial --save-logits file) kept every so often, so that a
  // killed run with resume continues after the chunks done, to the same numbers and bytes.
  // One process only (under mpirun: an Error).
  StatsCheckpoint checkpoint;
  // Called after each chunk: (chunks done, chunks total, running ppl).
  std::function<void(int64_t, int64_t, double)> progress;
};

// tokens: the whole tokenized text (BOS first, as llama.cpp tokenizes it).
PerplexityResult compute_perplexity(const Model& model, std::span<const int32_t> tokens, const PerplexityOptions& options);

}  // namespace lowbit
