// Speed measurements (lowbit/speed.h): read bandwidth, int8 peak, model prefill/decode.
#include "lowbit/speed.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>
#include <random>

#include "lowbit/engine.h"
#include "lowbit/kernels.h"

namespace lowbit {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

Rate rate_of(std::vector<double> per_second) {
  std::sort(per_second.begin(), per_second.end());
  if (per_second.empty()) return {};
  return {per_second[per_second.size() / 2], per_second.front(), per_second.back()};
}

// XOR of n words, by the widest vector loads the CPU has (GCC clones it per target and
// picks one at load time): one core's read rate is bounded by its loads in flight.
__attribute__((target_clones("avx512f", "avx2", "default"))) uint64_t xor_words(const uint64_t* p, int64_t n) {
  uint64_t acc[8] = {};
  for (int64_t i = 0; i + 8 <= n; i += 8) {
    for (int k = 0; k < 8; ++k) acc[k] ^= p[i + k];
  }
  return acc[0] ^ acc[1] ^ acc[2] ^ acc[3] ^ acc[4] ^ acc[5] ^ acc[6] ^ acc[7];
}

}  // namespace

double measure_read_bandwidth(uint64_t bytes, int reps) {
  const int64_t n = static_cast<int64_t>(bytes / sizeof(uint64_t));
  std::unique_ptr<uint64_t[]> buf(new uint64_t[n]);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) buf[i] = static_cast<uint64_t>(i);  // each thread touches its own pages
  double best = 0;
  volatile uint64_t sink = 0;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = Clock::now();
    uint64_t acc = 0;
#pragma omp parallel reduction(^ : acc)
    {
      const int64_t per = (n / omp_get_num_threads() + 7) / 8 * 8, begin = per * omp_get_thread_num();
      acc ^= xor_words(buf.get() + std::min(begin, n), std::max<int64_t>(0, std::min(per, n - begin)));
    }
    const double s = seconds_since(t0);
    sink = sink + acc;
    best = std::max(best, static_cast<double>(bytes) / s / 1e9);
  }
  return best;
}

uint64_t decode_bytes_per_token(const Model& model) {
  uint64_t bytes = model.output.data.size();
  for (const LayerWeights& l : model.layers) {
    for (const Weight* w : {&l.attn_q, &l.attn_k, &l.attn_v, &l.attn_output, &l.ffn_gate, &l.ffn_up, &l.ffn_down}) {
      bytes += w->data.size();
    }
  }
  return bytes;
}

ModelSpeed measure_model_speed(const Model& model, int64_t prompt_tokens, int64_t generated_tokens, int reps,
                               const KvCacheOptions& kv, const ActQuantOptions& act) {
  ModelSpeed s;
  s.prompt_tokens = prompt_tokens;
  s.generated_tokens = generated_tokens;
  s.reps = reps;
  s.bytes_per_token = decode_bytes_per_token(model);
  Engine engine(model, prompt_tokens + generated_tokens, kv);
  s.kv_bytes_per_token = engine.kv_bytes_per_token();
  engine.set_activation_quant(act);
  std::mt19937 rng(1);
  std::vector<int32_t> prompt(static_cast<size_t>(prompt_tokens));
  for (auto& t : prompt) t = static_cast<int32_t>(rng() % static_cast<uint32_t>(model.config.vocab_size));
  std::vector<float> logits(static_cast<size_t>(model.config.vocab_size));
  std::vector<double> prefill, decode;
  for (int r = 0; r <= reps; ++r) {  // rep 0 warms up
    auto t0 = Clock::now();
    if (prompt_tokens > 0) engine.forward(prompt, 0, logits.data(), false);
    const double ps = seconds_since(t0);
    int32_t token = prompt.empty() ? 0 : prompt.back();
    t0 = Clock::now();
    for (int64_t g = 0; g < generated_tokens; ++g) {
      engine.forward(std::span(&token, 1), prompt_tokens + g, logits.data(), false);
      token = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    }
    const double ds = seconds_since(t0);
    if (r == 0) continue;
    if (prompt_tokens > 0) prefill.push_back(static_cast<double>(prompt_tokens) / ps);
    if (generated_tokens > 0) decode.push_back(static_cast<double>(generated_tokens) / ds);
  }
  s.prefill = rate_of(prefill);
  s.decode = rate_of(decode);
  return s;
}

double measure_int8_peak_gops() { return active_isa().int8_peak_gops ? active_isa().int8_peak_gops() : 0.0; }

}  // namespace lowbit
