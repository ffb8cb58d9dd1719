// The inference engine: a Llama forward pass over weights in any format of the table
// (each weight row is decoded inside the matrix product), with a KV cache, batched prefill
// and OpenMP threads. Reference kernels; the fast ones are a later issue.
#pragma once

#include <functional>
#include <span>
#include <vector>

#include "lowbit/model.h"

namespace lowbit {

// Sees the input of every layer matrix product: w, x: (T, w.cols). Calibration (the
// importance matrix, later GPTQ/AWQ statistics) is built on it.
using MatmulObserver = std::function<void(const Weight& w, const float* x, int64_t T)>;

class Engine {
 public:
  Engine(const Model& model, int64_t max_context);
  void set_observer(MatmulObserver observer) { observer_ = std::move(observer); }

  // Runs `tokens` at positions [pos, pos + n) against the cache of positions [0, pos).
  // logits: (n, vocab) when all_logits, else (1, vocab) for the last token; may be null.
  void forward(std::span<const int32_t> tokens, int64_t pos, float* logits, bool all_logits = true);

  const Model& model() const { return model_; }
  int64_t max_context() const { return max_context_; }

 private:
  const Model& model_;
  int64_t max_context_;
  std::vector<std::vector<float>> key_cache_, value_cache_;  // [layer] (max_context, kv_dim)
  std::vector<float> rope_cos_, rope_sin_;                   // (max_context, head_dim/2)
  MatmulObserver observer_;

  void project(const Weight& w, const float* x, int64_t T, float* y);
};

// y: (T, w.rows) = x: (T, w.cols) times w transposed; rows are decoded once per call.
void matmul(const Weight& w, const float* x, int64_t T, float* y);

// Chunked evaluations (perplexity, imatrix) need chunks of at least kMinChunkTokens and at
// most the model's trained context. Throws Error naming the option (-c) and both limits.
inline constexpr int64_t kMinChunkTokens = 4;
void check_chunk_tokens(const Model& model, int64_t n_ctx);

}  // namespace lowbit
