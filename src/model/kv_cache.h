// The attention cache: keys and values of every layer for positions [0, max_context),
// stored in f32. Not the attention itself (layers.h).
#pragma once

#include <cstdint>
#include <vector>

namespace lowbit {

class KvCache {
 public:
  KvCache(int64_t n_layers, int64_t max_context, int64_t kv_dim);
  // k, v: (T, kv_dim) for positions [pos, pos + T) of `layer`.
  void store(int64_t layer, int64_t pos, const float* k, const float* v, int64_t T);
  // (max_context, kv_dim) rows of `layer`; row p holds position p.
  const float* keys(int64_t layer) const { return keys_[layer].data(); }
  const float* values(int64_t layer) const { return values_[layer].data(); }
  int64_t max_context() const { return max_context_; }
  int64_t kv_dim() const { return kv_dim_; }

 private:
  int64_t max_context_, kv_dim_;
  std::vector<std::vector<float>> keys_, values_;  // [layer] (max_context, kv_dim)
};

}  // namespace lowbit
