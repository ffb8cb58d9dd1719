// The KLD-by-position profile (by_position.h).
#include "lowbit/by_position.h"

#include <cmath>
#include <string>

#include "eval/token_scores.h"
#include "lowbit/error.h"

namespace lowbit {

std::vector<PositionBucket> kld_by_position(const Model& base, const Model& model, std::span<const int32_t> tokens,
                                            const PositionProfileOptions& o) {
  const int64_t V = base.config.vocab_size, n_ctx = o.n_ctx;
  if (model.config.vocab_size != V) throw Error("model has another vocabulary size than the base", {.value = std::to_string(model.config.vocab_size)});
  if (n_ctx < 2 || n_ctx > std::min(base.config.context_length, model.config.context_length)) {
    throw Error("context size must be at least 2 and at most the models' context", {.value = std::to_string(n_ctx)});
  }
  if (o.buckets < 1 || o.buckets > n_ctx - 1) {
    throw Error("position buckets must be between 1 and the context size - 1", {.value = std::to_string(o.buckets)});
  }
  int64_t n_chunks = static_cast<int64_t>(tokens.size()) / n_ctx;
  if (o.max_chunks > 0) n_chunks = std::min(n_chunks, o.max_chunks);
  if (n_chunks == 0) throw Error("text too short: need at least one chunk of " + std::to_string(n_ctx) + " tokens", {.value = std::to_string(tokens.size()) + " tokens"});
  const int32_t bos = base.tokenizer ? base.tokenizer->bos() : -1;
  Engine eb(base, n_ctx, o.base_kv), em(model, n_ctx, o.kv);
  em.set_activation_quant(o.act);
  std::vector<float> lb(static_cast<size_t>(n_ctx * V)), lm(lb.size()), pb(static_cast<size_t>(V)), pm(pb.size());
  std::vector<PositionBucket> out(static_cast<size_t>(o.buckets));
  std::vector<double> sum2(out.size());
  const int64_t predictions = n_ctx - 1;
  for (size_t b = 0; b < out.size(); ++b) {
    out[b].first = (static_cast<int64_t>(b) * predictions + o.buckets - 1) / o.buckets;
    out[b].last = ((static_cast<int64_t>(b) + 1) * predictions + o.buckets - 1) / o.buckets - 1;
  }
  for (int64_t c = 0; c < n_chunks; ++c) {
    std::vector<int32_t> chunk(tokens.begin() + c * n_ctx, tokens.begin() + (c + 1) * n_ctx);
    if (bos >= 0) chunk[0] = bos;
    eb.forward(chunk, 0, lb.data(), true);
    em.forward(chunk, 0, lm.data(), true);
    for (int64_t j = 0; j < predictions; ++j) {
      log_softmax(lb.data() + j * V, V, pb.data());
      log_softmax(lm.data() + j * V, V, pm.data());
      const double kld = kl_divergence(pb.data(), pm.data(), V);
      PositionBucket& b = out[static_cast<size_t>(j * o.buckets / predictions)];
      b.tokens += 1;
      b.kld_mean += kld;
      sum2[&b - out.data()] += kld * kld;
      b.top1 += argmax(pb.data(), V) == argmax(pm.data(), V);
    }
  }
  for (size_t i = 0; i < out.size(); ++i) {
    PositionBucket& b = out[i];
    const double n = static_cast<double>(b.tokens);
    b.kld_mean /= n;
    b.top1 /= n;
    const double var = sum2[i] / n - b.kld_mean * b.kld_mean;
    b.kld_stderr = var > 0 && b.tokens > 1 ? std::sqrt(var / (n - 1)) : 0;
  }
  return out;
}

}  // namespace lowbit
