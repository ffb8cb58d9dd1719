// The attention cache: keys and values of every layer for positions [0, max_context),
// head-major: each KV head's rows are contiguous, so one head's attention streams through
// memory in order. Rows (one position of one KV head, head_dim values) are stored in f32 or
// in a format of the table (--kv-cache), optionally rotated by a Hadamard transform before
// rounding (--kv-rotate). Keys are stored after RoPE, as llama.cpp stores them. Not the
// attention itself (layers.h).
#pragma once

#include <cstdint>
#include <vector>

#include "lowbit/engine.h"

namespace lowbit {

class KvCache {
 public:
  // Throws Error when the format's blocks do not fit head_dim.
  KvCache(int64_t n_layers, int64_t max_context, int64_t n_kv_heads, int64_t head_dim, const KvCacheOptions& options = {});
  // k, v: (T, n_kv_heads · head_dim) for positions [pos, pos + T) of `layer`.
  void store(int64_t layer, int64_t pos, const float* k, const float* v, int64_t T);
  // Rows [from, from + n) of KV head `head` of `layer` as f32 (n, head_dim): a pointer into
  // the cache when it holds f32, else into `scratch`, decoded (and rotated back).
  const float* keys(int64_t layer, int64_t head, int64_t from, int64_t n, std::vector<float>& scratch) const;
  const float* values(int64_t layer, int64_t head, int64_t from, int64_t n, std::vector<float>& scratch) const;
  int64_t max_context() const { return max_context_; }
  int64_t head_dim() const { return head_dim_; }
  // Bytes one position takes over all layers, keys and values.
  uint64_t bytes_per_token() const { return 2 * static_cast<uint64_t>(n_layers_ * n_kv_heads_) * row_bytes_; }

 private:
  const float* rows(const std::vector<float>& store, int64_t head, int64_t from, int64_t n, std::vector<float>& scratch) const;
  void put(std::vector<float>& store, int64_t pos, const float* x, int64_t T);
  int64_t n_layers_, max_context_, n_kv_heads_, head_dim_;
  const Format* format_;  // f32 included
  bool rotate_;
  int64_t rotate_block_;  // the Hadamard block: the largest power of two dividing head_dim
  bool raw_f32_;          // f32 rows, not rotated: stored and read as they come
  uint64_t row_bytes_;
  // [layer] (n_kv_heads, max_context) rows of row_bytes_, in float storage (the f32 cache
  // is read as floats, the others as bytes).
  std::vector<std::vector<float>> keys_, values_;
};

// In place on each row of x: (n, head_dim), the orthonormal Hadamard transform of every
// `block` values (block a power of two dividing head_dim). Its own inverse.
void hadamard_rows(float* x, int64_t n, int64_t head_dim, int64_t block);

}  // namespace lowbit
