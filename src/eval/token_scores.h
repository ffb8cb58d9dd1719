// Per-token scores shared by perplexity and the by-position profile.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace lowbit {

// logprobs: (n) = log_softmax(logits), in double for the sums.
inline void log_softmax(const float* logits, int64_t n, float* logprobs) {
  const float max = *std::max_element(logits, logits + n);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += std::exp(static_cast<double>(logits[i]) - max);
  const double lse = max + std::log(sum);
  for (int64_t i = 0; i < n; ++i) logprobs[i] = static_cast<float>(logits[i] - lse);
}

// KL(base || other) of two log-probability rows of n, clamped at 0.
inline double kl_divergence(const float* base, const float* other, int64_t n) {
  double kld = 0;
  for (int64_t v = 0; v < n; ++v) {
    const double pb = std::exp(static_cast<double>(base[v]));
    kld += pb * (static_cast<double>(base[v]) - other[v]);
  }
  return std::max(0.0, kld);
}

inline int64_t argmax(const float* x, int64_t n) { return std::max_element(x, x + n) - x; }

}  // namespace lowbit
