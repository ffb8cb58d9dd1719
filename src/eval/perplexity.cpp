// llama.cpp's perplexity method and KL-divergence against a saved base (perplexity.h).
#include "lowbit/perplexity.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "eval/logits_file.h"
#include "lowbit/engine.h"
#include "lowbit/error.h"
#include "eval/token_scores.h"

namespace lowbit {
namespace {

double percentile(std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  const double pos = q * (sorted.size() - 1);
  const size_t lo = static_cast<size_t>(pos);
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (pos - lo) * (sorted[hi] - sorted[lo]);
}

}  // namespace

PerplexityResult compute_perplexity(const Model& model, std::span<const int32_t> tokens, const PerplexityOptions& o) {
  const int64_t n_ctx = o.n_ctx;
  const int64_t V = model.config.vocab_size;
  check_chunk_tokens(model, n_ctx);
  if (o.max_chunks < 0) throw Error("--chunks must be positive (0: all)", {.value = std::to_string(o.max_chunks)});
  int64_t n_chunks = static_cast<int64_t>(tokens.size()) / n_ctx;
  if (o.max_chunks > 0) n_chunks = std::min(n_chunks, o.max_chunks);
  if (n_chunks == 0) {
    throw Error("text too short: need at least one chunk of " + std::to_string(n_ctx) + " tokens",
                {.value = std::to_string(tokens.size()) + " tokens"});
  }
  const int32_t bos = model.tokenizer ? model.tokenizer->bos() : -1;
  const int64_t first = n_ctx / 2;
  const std::span<const int32_t> used = tokens.first(static_cast<size_t>(n_chunks * n_ctx));

  std::unique_ptr<LogitsFileReader> base;
  if (!o.kld_base_path.empty()) {
    base = std::make_unique<LogitsFileReader>(o.kld_base_path);
    if (base->n_vocab() != V || base->n_ctx() != n_ctx || base->n_chunks() != n_chunks ||
        !std::equal(used.begin(), used.end(), base->tokens().begin(), base->tokens().end())) {
      throw Error("base logits were computed on other tokens, context or vocabulary (use the same text, -c and tokenizer)",
                  {.file = o.kld_base_path});
    }
  }
  std::unique_ptr<LogitsFileWriter> save;
  if (!o.save_logits_path.empty()) save = std::make_unique<LogitsFileWriter>(o.save_logits_path, V, n_ctx, n_chunks, used);

  Engine engine(model, n_ctx, o.kv);
  engine.set_activation_quant(o.act);
  engine.use_reference_kernels(o.reference_kernels);
  engine.use_reference_act_rounding(o.reference_act_rounding);
  std::vector<float> logits(n_ctx * V), logprobs(V), base_logprobs(V);
  std::vector<double> klds;
  double nll = 0, nll2 = 0, base_nll = 0;
  int64_t count = 0, top1_same = 0, record = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t c = 0; c < n_chunks; ++c) {
    std::vector<int32_t> chunk(used.begin() + c * n_ctx, used.begin() + (c + 1) * n_ctx);
    if (bos >= 0) chunk[0] = bos;
    engine.forward(chunk, 0, logits.data(), true);
    for (int64_t j = first; j < n_ctx - 1; ++j) {
      const int32_t target = used[c * n_ctx + j + 1];
      log_softmax(logits.data() + j * V, V, logprobs.data());
      const double l = -static_cast<double>(logprobs[target]);
      nll += l;
      nll2 += l * l;
      ++count;
      if (save) save->add(logprobs.data(), target);
      if (base) {
        base_nll += -static_cast<double>(base->record(record++, base_logprobs.data()));
        klds.push_back(kl_divergence(base_logprobs.data(), logprobs.data(), V));
        top1_same += argmax(base_logprobs.data(), V) == argmax(logprobs.data(), V);
      }
    }
    if (o.progress) o.progress(c + 1, n_chunks, std::exp(nll / count));
  }
  if (save) save->commit();
  const auto outliers = engine.outlier_stats();

  PerplexityResult r;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.outliers = outliers;
  r.n_chunks = n_chunks;
  r.n_ctx = n_ctx;
  r.n_scored = count;
  r.n_tokens = static_cast<int64_t>(tokens.size());
  r.tokens_per_second = r.seconds > 0 ? n_chunks * n_ctx / r.seconds : 0;
  r.mean_nll = nll / count;
  r.ppl = std::exp(r.mean_nll);
  const double var = nll2 / count - r.mean_nll * r.mean_nll;
  r.ppl_stderr = var > 0 && count > 1 ? std::sqrt(var / (count - 1)) * r.ppl : 0;
  if (base) {
    KldStats k;
    k.tokens = count;
    double sum = 0, sum2 = 0;
    for (double d : klds) {
      sum += d;
      sum2 += d * d;
    }
    k.mean = sum / count;
    const double kvar = sum2 / count - k.mean * k.mean;
    k.stderr_mean = kvar > 0 && count > 1 ? std::sqrt(kvar / (count - 1)) : 0;
    std::sort(klds.begin(), klds.end());
    k.max = klds.back();
    k.p999 = percentile(klds, 0.999);
    k.p99 = percentile(klds, 0.99);
    k.p95 = percentile(klds, 0.95);
    k.p90 = percentile(klds, 0.90);
    k.median = percentile(klds, 0.5);
    k.p10 = percentile(klds, 0.10);
    k.p05 = percentile(klds, 0.05);
    k.p01 = percentile(klds, 0.01);
    k.min = klds.front();
    k.top1_agreement = static_cast<double>(top1_same) / count;
    k.top1_stderr = std::sqrt(k.top1_agreement * (1 - k.top1_agreement) / std::max<int64_t>(1, count - 1));
    k.base_ppl = std::exp(base_nll / count);
    k.delta_ppl = r.ppl - k.base_ppl;
    r.kld = k;
  }
  return r;
}

}  // namespace lowbit
