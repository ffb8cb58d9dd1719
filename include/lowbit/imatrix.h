// The importance matrix of llama.cpp: for every layer matrix, the sum over calibration
// tokens of x_j^2 for each input column j, with the token count. Collected by running
// the engine over chunks of text; read and written in llama.cpp's GGUF imatrix format
// (and read from its legacy .dat format). Quantizers use mean x^2 as per-column weights.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "lowbit/model.h"
#include "lowbit/stats_checkpoint.h"

namespace lowbit {

struct ImportanceMatrix {
  struct Entry {
    std::vector<double> sum2;  // (cols) sum of x_j^2
    int64_t count = 0;         // tokens seen
  };
  std::map<std::string, Entry> entries;  // by GGUF tensor name ("blk.0.attn_q.weight")
  std::vector<std::string> datasets;
  int64_t chunk_count = 0, chunk_size = 0;
  std::string source;  // the file it was loaded from, named in errors

  // Mean x_j^2 for tensor `name` (cols values), or empty when there is no entry.
  // Throws Error when the entry has another column count.
  std::vector<float> weights_for(const std::string& name, int64_t cols) const;

  void save(const std::string& path) const;           // GGUF imatrix (llama.cpp's current format)
  // GGUF or legacy .dat. Every sum must be finite and non-negative and every count
  // positive; errors name the file, the entry and the column.
  static ImportanceMatrix load(const std::string& path);
};

// Runs `model` over chunks of n_ctx tokens (BOS first, as llama-imatrix does) and collects
// the statistics. progress: (chunks done, total). checkpoint: the sums so far, saved as
// chunks finish (lowbit/stats_checkpoint.h), and continued from with resume: the result is
// the uninterrupted run's; resume_note says what was found.
ImportanceMatrix collect_imatrix(const Model& model, std::span<const int32_t> tokens, int64_t n_ctx,
                                 int64_t max_chunks, const std::string& dataset,
                                 const std::function<void(int64_t, int64_t)>& progress = {},
                                 const StatsCheckpoint& checkpoint = {}, std::string* resume_note = nullptr);

}  // namespace lowbit
