// What a perplexity pass keeps in its checkpoint (PerplexityOptions::checkpoint): the
// sums after the chunks done, exactly (doubles as their bits, every token's KLD in order),
// LLM.int8()'s outlier counts, the time spent, and, with --save-logits, where the partial
// logits file stands: its temporary name and the XXH3 of each stretch written between
// checkpoints. A resumed pass re-hashes those stretches before it appends to the file.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "lowbit/atomic_file.h"
#include "lowbit/engine.h"
#include "lowbit/perplexity.h"
#include "lowbit/stats_checkpoint.h"

namespace lowbit {

struct PerplexitySums {
  double nll = 0, nll2 = 0, base_nll = 0;
  int64_t count = 0, top1_same = 0;
  int64_t record = 0;         // the next record of the base logits
  std::vector<double> klds;   // (count) per scored token, in order
  std::map<std::string, OutlierStats> outliers;  // LLM.int8(): of the chunks done
  double seconds = 0;         // spent on the chunks done
  std::string logits_temp;    // --save-logits: the partial file
  std::vector<FileRegion> logits_regions;  // its stretches, from byte 0
};

void write_perplexity_sums(const PerplexitySums& sums, StatsWriter& out);
PerplexitySums read_perplexity_sums(StatsReader& in);

// Outlier counts as bytes; read_outliers adds them to `into` (integers: in any order).
void write_outliers(const std::map<std::string, OutlierStats>& counts, StatsWriter& out);
void add_outliers(StatsReader& in, std::map<std::string, OutlierStats>& into);

// What a pass's numbers depend on: the model's files, the scored tokens, the chunking, the
// KV cache, the activations, the kernels, the base logits file, the logits path and the
// lowbit build.
uint64_t perplexity_fingerprint(const Model& model, std::span<const int32_t> scored_tokens, int64_t n_ctx,
                                const PerplexityOptions& options);

}  // namespace lowbit
