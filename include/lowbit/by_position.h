// KL-divergence and top-1 agreement by token position in the context: does a quantized
// model's (or KV cache's) error grow with context? Both models run every chunk of n_ctx
// tokens side by side (BOS first, as perplexity); the prediction after position j
// (j = 0 .. n_ctx - 2) falls in bucket j * buckets / (n_ctx - 1).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "lowbit/engine.h"
#include "lowbit/model.h"

namespace lowbit {

struct PositionBucket {
  int64_t first = 0, last = 0;  // positions [first, last] of the context
  int64_t tokens = 0;
  double kld_mean = 0, kld_stderr = 0, top1 = 0;
};

struct PositionProfileOptions {
  int64_t n_ctx = 512;
  int64_t max_chunks = 0;  // 0: all
  int64_t buckets = 4;
  KvCacheOptions base_kv, kv;  // the caches each model runs with
  ActQuantOptions act;         // the compared model's activations (the base: float)
};

// Throws Error when the vocabularies differ, the text is shorter than one chunk, or
// buckets is not in [1, n_ctx - 1].
std::vector<PositionBucket> kld_by_position(const Model& base, const Model& model, std::span<const int32_t> tokens,
                                            const PositionProfileOptions& options);

}  // namespace lowbit
