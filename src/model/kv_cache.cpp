// KvCache (see kv_cache.h).
#include "model/kv_cache.h"

#include <algorithm>
#include <string>

#include "lowbit/error.h"

namespace lowbit {

KvCache::KvCache(int64_t n_layers, int64_t max_context, int64_t n_kv_heads, int64_t head_dim)
    : max_context_(max_context), n_kv_heads_(n_kv_heads), head_dim_(head_dim),
      keys_(n_layers, std::vector<float>(static_cast<size_t>(n_kv_heads * max_context * head_dim))), values_(keys_) {}

void KvCache::store(int64_t layer, int64_t pos, const float* k, const float* v, int64_t T) {
  if (pos < 0 || pos + T > max_context_) {
    throw Error("positions exceed the context", {.value = std::to_string(pos + T) + " > " + std::to_string(max_context_)});
  }
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t h = 0; h < n_kv_heads_; ++h) {
      const int64_t from = (t * n_kv_heads_ + h) * head_dim_, to = h * head_stride() + (pos + t) * head_dim_;
      std::copy_n(k + from, head_dim_, keys_[layer].data() + to);
      std::copy_n(v + from, head_dim_, values_[layer].data() + to);
    }
  }
}

}  // namespace lowbit
