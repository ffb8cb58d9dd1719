// The attention cache: keys and values of every layer for positions [0, max_context),
// stored in f32, head-major: each KV head's rows are contiguous, so one head's attention
// streams through memory in order. Not the attention itself (layers.h).
#pragma once

#include <cstdint>
#include <vector>

namespace lowbit {

class KvCache {
 public:
  KvCache(int64_t n_layers, int64_t max_context, int64_t n_kv_heads, int64_t head_dim);
  // k, v: (T, n_kv_heads · head_dim) for positions [pos, pos + T) of `layer`.
  void store(int64_t layer, int64_t pos, const float* k, const float* v, int64_t T);
  // (max_context, head_dim) rows of KV head `head` of `layer`; row p holds position p.
  const float* keys(int64_t layer, int64_t head) const { return keys_[layer].data() + head * head_stride(); }
  const float* values(int64_t layer, int64_t head) const { return values_[layer].data() + head * head_stride(); }
  int64_t max_context() const { return max_context_; }
  int64_t head_dim() const { return head_dim_; }

 private:
  int64_t head_stride() const { return max_context_ * head_dim_; }
  int64_t max_context_, n_kv_heads_, head_dim_;
  std::vector<std::vector<float>> keys_, values_;  // [layer] (n_kv_heads, max_context, head_dim)
};

}  // namespace lowbit
