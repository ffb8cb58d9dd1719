// What `lowbit eval --checkpoint FILE` keeps so that a killed comparison continues where it
// stopped: FILE holds the finished rows (every number, timings included, as measured) and
// the base's task choices; FILE.logits is the base's saved logits, kept until the run ends;
// FILE.pass is the running perplexity pass's own checkpoint (perplexity_checkpoint.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lowbit/evaluate.h"
#include "lowbit/stats_checkpoint.h"

namespace lowbit {

// What FILE holds: the rows finished so far, and the base's --task choices (empty without).
struct EvalProgress {
  std::vector<EvalRow> rows;
  std::vector<int64_t> base_choices;
};
void write_eval_progress(const EvalProgress& progress, StatsWriter& out);
EvalProgress read_eval_progress(StatsReader& in, int64_t rows);

// What the table depends on: the models' and text's paths and stamps, every option and
// the lowbit build.
uint64_t eval_fingerprint(const std::string& base, const std::vector<std::string>& quantized, const EvalOptions& options);

inline std::string eval_logits_path(const std::string& checkpoint) { return checkpoint + ".logits"; }
inline std::string eval_pass_path(const std::string& checkpoint) { return checkpoint + ".pass"; }

}  // namespace lowbit
