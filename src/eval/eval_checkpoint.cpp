// eval's checkpoint contents (eval_checkpoint.h).
#include "eval/eval_checkpoint.h"

#include <filesystem>

namespace lowbit {

namespace {

void write_eval_row(const EvalRow& r, StatsWriter& out) {
  out.put_string(r.model);
  out.put<uint8_t>(r.is_base);
  out.put(r.file_bytes);
  for (double v : {r.bits_per_weight, r.ppl, r.ppl_stderr, r.delta_ppl, r.kld_mean, r.kld_stderr, r.kld_p99, r.top1,
                   r.gen_tokens_per_second, r.eval_tokens_per_second, r.outlier_share, r.task_accuracy, r.task_stderr,
                   r.task_agreement}) {
    out.put(v);
  }
  out.put(r.peak_rss_bytes);
  out.put_string(r.kv_cache);
  out.put_string(r.act);
  out.put(r.kv_bytes_per_token);
  out.put(r.task_items);
  out.put<uint64_t>(r.by_position.size());
  for (const PositionBucket& b : r.by_position) {
    out.put(b.first);
    out.put(b.last);
    out.put(b.tokens);
    out.put(b.kld_mean);
    out.put(b.kld_stderr);
    out.put(b.top1);
  }
}

EvalRow read_eval_row(StatsReader& in) {
  EvalRow r;
  r.model = in.get_string();
  r.is_base = in.get<uint8_t>() != 0;
  r.file_bytes = in.get<uint64_t>();
  for (double* v : {&r.bits_per_weight, &r.ppl, &r.ppl_stderr, &r.delta_ppl, &r.kld_mean, &r.kld_stderr, &r.kld_p99, &r.top1,
                    &r.gen_tokens_per_second, &r.eval_tokens_per_second, &r.outlier_share, &r.task_accuracy, &r.task_stderr,
                    &r.task_agreement}) {
    *v = in.get<double>();
  }
  r.peak_rss_bytes = in.get<uint64_t>();
  r.kv_cache = in.get_string();
  r.act = in.get_string();
  r.kv_bytes_per_token = in.get<uint64_t>();
  r.task_items = in.get<int64_t>();
  for (auto n = in.get<uint64_t>(); n > 0; --n) {
    PositionBucket b;
    b.first = in.get<int64_t>();
    b.last = in.get<int64_t>();
    b.tokens = in.get<int64_t>();
    b.kld_mean = in.get<double>();
    b.kld_stderr = in.get<double>();
    b.top1 = in.get<double>();
    r.by_position.push_back(b);
  }
  return r;
}

}  // namespace

void write_eval_progress(const EvalProgress& progress, StatsWriter& out) {
  for (const EvalRow& r : progress.rows) write_eval_row(r, out);
  out.put<uint64_t>(progress.base_choices.size());
  for (int64_t c : progress.base_choices) out.put(c);
}

EvalProgress read_eval_progress(StatsReader& in, int64_t rows) {
  EvalProgress p;
  for (int64_t i = 0; i < rows; ++i) p.rows.push_back(read_eval_row(in));
  p.base_choices.resize(in.get<uint64_t>());
  for (int64_t& c : p.base_choices) c = in.get<int64_t>();
  return p;
}

uint64_t eval_fingerprint(const std::string& base, const std::vector<std::string>& quantized, const EvalOptions& o) {
  FingerprintPart what;
  // A folder's stamp is its own (files replaced in it change it); every pass's checkpoint
  // also hashes each model's files.
  what.add("base").add_file(base);
  for (const std::string& q : quantized) what.add("quantized").add_file(q);
  what.add("text").add_file(o.text_path);
  what.add("tokenizer").add_file(o.tokenizer);
  what.add("task").add_file(o.task_path);
  what.add(std::to_string(o.n_ctx) + " " + std::to_string(o.max_chunks) + " " + std::to_string(o.gen_tokens) + " " +
           std::to_string(o.by_position) + " act " + o.act + " " + std::to_string(o.threshold));
  for (const EvalKvCache& kv : o.kv_caches) what.add("kv " + kv.label);
  what.add(std::to_string(running_build_fingerprint()));
  return what.value();
}

}  // namespace lowbit
