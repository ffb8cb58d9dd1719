// llama.cpp's perplexity method and KL-divergence against a saved base (perplexity.h).
#include "lowbit/perplexity.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "eval/logits_file.h"
#include "lowbit/cluster.h"
#include "lowbit/engine.h"
#include "lowbit/error.h"
#include "lowbit/stats_checkpoint.h"
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
  // Under mpirun the chunks are shared: round r runs chunk r + k on rank k, and every rank
  // adds every chunk's scores in chunk order, so the result is one process's, bit for bit.
  // Saved logits are per rank (FILE.rankK: the rank's chunks), read back by the same rank.
  Cluster& ranks = cluster();
  const int64_t N = ranks.size();
  std::vector<int32_t> mine;  // this rank's chunks' tokens, in order
  for (int64_t c = ranks.rank(); c < n_chunks; c += N) mine.insert(mine.end(), used.begin() + c * n_ctx, used.begin() + (c + 1) * n_ctx);
  const int64_t my_chunks = static_cast<int64_t>(mine.size()) / n_ctx;
  auto rank_file = [&](const std::string& path) { return N > 1 ? path + ".rank" + std::to_string(ranks.rank()) : path; };

  std::unique_ptr<LogitsFileReader> base;
  if (!o.kld_base_path.empty()) {
    base = std::make_unique<LogitsFileReader>(rank_file(o.kld_base_path));
    if (base->n_vocab() != V || base->n_ctx() != n_ctx || base->n_chunks() != my_chunks ||
        !std::equal(mine.begin(), mine.end(), base->tokens().begin(), base->tokens().end())) {
      throw Error("base logits were computed on other tokens, context or vocabulary (use the same text, -c and tokenizer" +
                      std::string(N > 1 ? ", and the same mpirun -np)" : ")"),
                  {.file = rank_file(o.kld_base_path)});
    }
  }
  std::unique_ptr<LogitsFileWriter> save;
  if (!o.save_logits_path.empty()) save = std::make_unique<LogitsFileWriter>(rank_file(o.save_logits_path), V, n_ctx, my_chunks, mine);

  Engine engine(model, n_ctx, o.kv);
  engine.set_activation_quant(o.act);
  engine.use_reference_kernels(o.reference_kernels);
  engine.use_reference_act_rounding(o.reference_act_rounding);
  std::vector<float> logits(n_ctx * V), logprobs(V), base_logprobs(V);
  std::vector<double> klds;
  double nll = 0, nll2 = 0, base_nll = 0;
  int64_t count = 0, top1_same = 0, record = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t round = 0; round < n_chunks; round += N) {
    StatsWriter scores;  // per scored position: its NLL [, the base's NLL, the KLD, top-1 agreement]
    if (const int64_t c = round + ranks.rank(); c < n_chunks) {
      std::vector<int32_t> chunk(used.begin() + c * n_ctx, used.begin() + (c + 1) * n_ctx);
      if (bos >= 0) chunk[0] = bos;
      engine.forward(chunk, 0, logits.data(), true);
      for (int64_t j = first; j < n_ctx - 1; ++j) {
        const int32_t target = used[c * n_ctx + j + 1];
        log_softmax(logits.data() + j * V, V, logprobs.data());
        scores.put(-static_cast<double>(logprobs[target]));
        if (save) save->add(logprobs.data(), target);
        if (base) {
          scores.put(-static_cast<double>(base->record(record++, base_logprobs.data())));
          scores.put(kl_divergence(base_logprobs.data(), logprobs.data(), V));
          scores.put<uint8_t>(argmax(base_logprobs.data(), V) == argmax(logprobs.data(), V));
        }
      }
    }
    std::vector<uint8_t> all;
    for (const auto& part : ranks.gather(scores.bytes())) all.insert(all.end(), part.begin(), part.end());
    ranks.broadcast(all);
    for (StatsReader in(std::move(all), "perplexity scores"); !in.done();) {
      const double l = in.get<double>();
      nll += l;
      nll2 += l * l;
      ++count;
      if (base) {
        base_nll += in.get<double>();
        klds.push_back(in.get<double>());
        top1_same += in.get<uint8_t>();
      }
    }
    if (o.progress) o.progress(std::min(round + N, n_chunks), n_chunks, std::exp(nll / count));
  }
  if (save) save->commit();
  // LLM.int8()'s outlier counts: summed over the ranks (integers: in any order).
  std::map<std::string, OutlierStats> outliers = engine.outlier_stats();
  if (N > 1) {
    auto to_bytes = [](const std::map<std::string, OutlierStats>& counts) {
      StatsWriter w;
      w.put<uint64_t>(counts.size());
      for (const auto& [name, st] : counts) {
        w.put_string(name);
        w.put(st.outlier_columns);
        w.put(st.columns);
      }
      return w.bytes();
    };
    auto add_bytes = [](std::vector<uint8_t> bytes, std::map<std::string, OutlierStats>& counts) {
      StatsReader in(std::move(bytes), "outlier counts");
      for (auto n = in.get<uint64_t>(); n > 0; --n) {
        OutlierStats& st = counts[in.get_string()];
        st.outlier_columns += in.get<int64_t>();
        st.columns += in.get<int64_t>();
      }
    };
    const auto parts = ranks.gather(to_bytes(outliers));
    outliers.clear();
    for (const auto& part : parts) add_bytes(part, outliers);  // rank 0: the sums
    std::vector<uint8_t> sums = to_bytes(outliers);
    ranks.broadcast(sums);
    outliers.clear();
    add_bytes(std::move(sums), outliers);
  }

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
