// Greedy / temperature / top-k / top-p sampling (sampler.h).
#include "lowbit/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

namespace lowbit {

int32_t Sampler::sample(const float* logits, int64_t n) {
  if (o_.temperature <= 0) return static_cast<int32_t>(std::max_element(logits, logits + n) - logits);
  std::vector<int32_t> ids(n);
  std::iota(ids.begin(), ids.end(), 0);
  const int64_t k = o_.top_k > 0 ? std::min<int64_t>(o_.top_k, n) : n;
  std::partial_sort(ids.begin(), ids.begin() + k, ids.end(),
                    [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
  ids.resize(k);
  std::vector<double> p(k);
  const double max = logits[ids[0]];
  double sum = 0;
  for (int64_t i = 0; i < k; ++i) sum += p[i] = std::exp((logits[ids[i]] - max) / o_.temperature);
  int64_t keep = k;
  double cumulative = 0;
  for (int64_t i = 0; i < k; ++i) {
    cumulative += p[i] / sum;
    if (cumulative >= o_.top_p) {
      keep = i + 1;
      break;
    }
  }
  double kept = 0;
  for (int64_t i = 0; i < keep; ++i) kept += p[i];
  const double u = static_cast<double>(rng_() >> 11) * 0x1.0p-53 * kept;  // portable uniform
  double acc = 0;
  for (int64_t i = 0; i < keep; ++i) {
    acc += p[i];
    if (u < acc) return ids[i];
  }
  return ids[keep - 1];
}

}  // namespace lowbit
