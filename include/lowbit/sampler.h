// Next-token sampling: greedy (temperature <= 0), or temperature then top-k then top-p
// (nucleus) with a seeded generator, so a seed reproduces a generation exactly.
#pragma once

#include <cstdint>
#include <random>

namespace lowbit {

struct SamplerOptions {
  float temperature = 0.8f;
  int top_k = 40;        // 0: no limit
  float top_p = 0.95f;   // 1: no limit
  uint64_t seed = 42;
};

class Sampler {
 public:
  explicit Sampler(SamplerOptions o) : o_(o), rng_(o.seed) {}
  int32_t sample(const float* logits, int64_t n);

 private:
  SamplerOptions o_;
  std::mt19937_64 rng_;
};

}  // namespace lowbit
