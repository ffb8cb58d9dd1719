// llama.cpp's perplexity method and KL-divergence against a saved base (perplexity.h).
#include "lowbit/perplexity.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>

#include "eval/logits_file.h"
#include "eval/perplexity_checkpoint.h"
#include "lowbit/atomic_file.h"
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
  const int64_t first_scored = n_ctx / 2;  // llama.cpp scores the second half
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
  // A checkpoint (one process): the sums after the chunks done, and with --save-logits the
  // partial file, continued once its stretches hash as recorded; else the pass starts again.
  if (N > 1 && !o.checkpoint.path.empty()) {
    throw Error("a perplexity checkpoint is kept by one process; run without mpirun to use --checkpoint", {.file = o.checkpoint.path});
  }
  StatsCheckpointer saver(o.checkpoint, "perplexity", perplexity_fingerprint(model, used, n_ctx, o));
  PerplexitySums s;
  int64_t first = 0;
  std::string note;
  std::unique_ptr<LogitsFileWriter> save;
  if (auto saved = saver.load()) {
    PerplexitySums r = read_perplexity_sums(saved->stats);
    note = saver.note();
    bool usable = true;
    if (!o.save_logits_path.empty()) {
      // It must be a dead writer's (by name: both are beside the --save-logits path).
      const std::string name = std::filesystem::path(r.logits_temp).filename().string();
      const auto dead = dead_writers_temporaries(o.save_logits_path);
      usable = !r.logits_regions.empty() && std::any_of(dead.begin(), dead.end(), [&](const std::string& d) {
        return std::filesystem::path(d).filename() == name;
      });
      if (usable) {
        r.logits_temp = claim_temporary(r.logits_temp);
        usable = verified_regions(r.logits_temp, r.logits_regions) == r.logits_regions.size();
        if (usable) save = std::make_unique<LogitsFileWriter>(o.save_logits_path, V, r.logits_temp, r.logits_regions.back().end);
        else std::filesystem::remove(r.logits_temp);
      }
      if (!usable) note += "; but the partial logits file " + r.logits_temp + " is gone or damaged, so the pass started again";
    }
    if (usable) {
      s = std::move(r);
      first = saved->done;
    }
  }
  if (!save && !o.save_logits_path.empty()) save = std::make_unique<LogitsFileWriter>(rank_file(o.save_logits_path), V, n_ctx, my_chunks, mine);

  Engine engine(model, n_ctx, o.kv);
  engine.set_activation_quant(o.act);
  engine.use_reference_kernels(o.reference_kernels);
  engine.use_reference_act_rounding(o.reference_act_rounding);
  std::vector<float> logits(n_ctx * V), logprobs(V), base_logprobs(V);
  // LLM.int8()'s outlier counts: the resumed chunks' and this run's.
  auto outlier_counts = [&] {
    std::map<std::string, OutlierStats> all = s.outliers;
    for (const auto& [name, st] : engine.outlier_stats()) {
      all[name].outlier_columns += st.outlier_columns;
      all[name].columns += st.columns;
    }
    return all;
  };
  const auto t0 = std::chrono::steady_clock::now();
  auto seconds = [&] { return s.seconds + std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  for (int64_t round = first; round < n_chunks; round += N) {
    StatsWriter scores;  // per scored position: its NLL [, the base's NLL, the KLD, top-1 agreement]
    if (const int64_t c = round + ranks.rank(); c < n_chunks) {
      std::vector<int32_t> chunk(used.begin() + c * n_ctx, used.begin() + (c + 1) * n_ctx);
      if (bos >= 0) chunk[0] = bos;
      engine.forward(chunk, 0, logits.data(), true);
      for (int64_t j = first_scored; j < n_ctx - 1; ++j) {
        const int32_t target = used[c * n_ctx + j + 1];
        log_softmax(logits.data() + j * V, V, logprobs.data());
        scores.put(-static_cast<double>(logprobs[target]));
        if (save) save->add(logprobs.data(), target);
        if (base) {
          scores.put(-static_cast<double>(base->record(s.record++, base_logprobs.data())));
          scores.put(kl_divergence(base_logprobs.data(), logprobs.data(), V));
          scores.put<uint8_t>(argmax(base_logprobs.data(), V) == argmax(logprobs.data(), V));
        }
      }
    }
    for (StatsReader in(ranks.gather_to_all(scores.bytes()), "perplexity scores"); !in.done();) {
      const double l = in.get<double>();
      s.nll += l;
      s.nll2 += l * l;
      ++s.count;
      if (base) {
        s.base_nll += in.get<double>();
        s.klds.push_back(in.get<double>());
        s.top1_same += in.get<uint8_t>();
      }
    }
    const int64_t done = std::min(round + N, n_chunks);
    if (o.progress) o.progress(done, n_chunks, std::exp(s.nll / s.count));
    if (saver.due() && done < n_chunks) {
      if (save) {
        s.logits_temp = save->temp_path();
        s.logits_regions.push_back({save->bytes_written(), save->take_region_digest()});
      }
      PerplexitySums now = s;
      now.outliers = outlier_counts();
      now.seconds = seconds();
      StatsWriter w;
      write_perplexity_sums(now, w);
      saver.save(done, w);
    }
  }
  if (save) save->commit();
  saver.finish();
  // LLM.int8()'s outlier counts: summed over the ranks (integers: in any order).
  std::map<std::string, OutlierStats> outliers = outlier_counts();
  if (N > 1) {
    StatsWriter mine;
    write_outliers(outliers, mine);
    outliers.clear();
    StatsReader all(ranks.gather_to_all(mine.bytes()), "outlier counts");
    while (!all.done()) add_outliers(all, outliers);
  }

  PerplexityResult r;
  r.seconds = seconds();
  r.resume_note = note;
  r.outliers = outliers;
  r.n_chunks = n_chunks;
  r.n_ctx = n_ctx;
  r.n_scored = s.count;
  r.n_tokens = static_cast<int64_t>(tokens.size());
  r.tokens_per_second = r.seconds > 0 ? n_chunks * n_ctx / r.seconds : 0;
  const int64_t count = s.count;
  std::vector<double>& klds = s.klds;
  r.mean_nll = s.nll / count;
  r.ppl = std::exp(r.mean_nll);
  const double var = s.nll2 / count - r.mean_nll * r.mean_nll;
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
    k.top1_agreement = static_cast<double>(s.top1_same) / count;
    k.top1_stderr = std::sqrt(k.top1_agreement * (1 - k.top1_agreement) / std::max<int64_t>(1, count - 1));
    k.base_ppl = std::exp(s.base_nll / count);
    k.delta_ppl = r.ppl - k.base_ppl;
    r.kld = k;
  }
  return r;
}

}  // namespace lowbit
