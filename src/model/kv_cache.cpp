// KvCache (see kv_cache.h).
#include "model/kv_cache.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "lowbit/error.h"

namespace lowbit {

void hadamard_rows(float* x, int64_t n, int64_t head_dim, int64_t block) {
  const float norm = 1.0f / std::sqrt(static_cast<float>(block));
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t b0 = 0; b0 < head_dim; b0 += block) {
      float* v = x + r * head_dim + b0;
      for (int64_t len = 1; len < block; len *= 2) {  // butterflies: (a, b) -> (a + b, a - b)
        for (int64_t i = 0; i < block; i += 2 * len) {
          for (int64_t j = i; j < i + len; ++j) {
            const float a = v[j], b = v[j + len];
            v[j] = a + b;
            v[j + len] = a - b;
          }
        }
      }
      for (int64_t i = 0; i < block; ++i) v[i] *= norm;
    }
  }
}

KvCache::KvCache(int64_t n_layers, int64_t max_context, int64_t n_kv_heads, int64_t head_dim, const KvCacheOptions& options)
    : n_layers_(n_layers), max_context_(max_context), n_kv_heads_(n_kv_heads), head_dim_(head_dim),
      format_(options.format != nullptr ? options.format : &format_by_name("f32")), rotate_(options.rotate),
      rotate_block_(head_dim & -head_dim), raw_f32_(format_->name == std::string_view("f32") && !rotate_) {
  if (!format_->row_local || !format_fits(*format_, head_dim)) {
    throw Error("KV cache type " + std::string(format_->name) + " does not fit the head size (" + std::to_string(head_dim) +
                    " values per row; blocks of " + std::to_string(format_->block_size) + ")",
                {.value = std::string(format_->name)});
  }
  row_bytes_ = format_row_bytes(*format_, head_dim);
  const size_t bytes = static_cast<size_t>(n_kv_heads * max_context) * row_bytes_;
  keys_.assign(static_cast<size_t>(n_layers), std::vector<float>((bytes + sizeof(float) - 1) / sizeof(float)));
  values_ = keys_;
}

void KvCache::put(std::vector<float>& store, int64_t pos, const float* x, int64_t T) {
  std::vector<float> rows(static_cast<size_t>(T * head_dim_));
  for (int64_t h = 0; h < n_kv_heads_; ++h) {
    for (int64_t t = 0; t < T; ++t) std::copy_n(x + (t * n_kv_heads_ + h) * head_dim_, head_dim_, rows.data() + t * head_dim_);
    if (raw_f32_) {
      std::copy(rows.begin(), rows.end(), store.begin() + (h * max_context_ + pos) * head_dim_);
      continue;
    }
    uint8_t* out = reinterpret_cast<uint8_t*>(store.data()) + static_cast<size_t>(h * max_context_ + pos) * row_bytes_;
    if (rotate_) hadamard_rows(rows.data(), T, head_dim_, rotate_block_);
    const std::vector<uint8_t> q = quantize_tensor(*format_, rows, T, head_dim_);
    std::memcpy(out, q.data(), q.size());
  }
}

void KvCache::store(int64_t layer, int64_t pos, const float* k, const float* v, int64_t T) {
  if (pos < 0 || pos + T > max_context_) {
    throw Error("positions exceed the context", {.value = std::to_string(pos + T) + " > " + std::to_string(max_context_)});
  }
  put(keys_[layer], pos, k, T);
  put(values_[layer], pos, v, T);
}

const float* KvCache::rows(const std::vector<float>& store, int64_t head, int64_t from, int64_t n, std::vector<float>& scratch) const {
  if (raw_f32_) return store.data() + (head * max_context_ + from) * head_dim_;
  const uint8_t* head_bytes = reinterpret_cast<const uint8_t*>(store.data()) + static_cast<size_t>(head * max_context_) * row_bytes_;
  scratch.resize(static_cast<size_t>(n * head_dim_));
  format_->dequantize(head_bytes, max_context_, head_dim_, from, from + n, scratch.data());
  if (rotate_) hadamard_rows(scratch.data(), n, head_dim_, rotate_block_);
  return scratch.data();
}

const float* KvCache::keys(int64_t layer, int64_t head, int64_t from, int64_t n, std::vector<float>& scratch) const {
  return rows(keys_[layer], head, from, n, scratch);
}

const float* KvCache::values(int64_t layer, int64_t head, int64_t from, int64_t n, std::vector<float>& scratch) const {
  return rows(values_[layer], head, from, n, scratch);
}

}  // namespace lowbit
