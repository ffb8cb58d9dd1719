// KvCache (see kv_cache.h).
#include "model/kv_cache.h"

#include <algorithm>
#include <string>

#include "lowbit/error.h"

namespace lowbit {

KvCache::KvCache(int64_t n_layers, int64_t max_context, int64_t kv_dim)
    : max_context_(max_context), kv_dim_(kv_dim),
      keys_(n_layers, std::vector<float>(static_cast<size_t>(max_context * kv_dim))), values_(keys_) {}

void KvCache::store(int64_t layer, int64_t pos, const float* k, const float* v, int64_t T) {
  if (pos < 0 || pos + T > max_context_) {
    throw Error("positions exceed the context", {.value = std::to_string(pos + T) + " > " + std::to_string(max_context_)});
  }
  std::copy_n(k, T * kv_dim_, keys_[layer].data() + pos * kv_dim_);
  std::copy_n(v, T * kv_dim_, values_[layer].data() + pos * kv_dim_);
}

}  // namespace lowbit
