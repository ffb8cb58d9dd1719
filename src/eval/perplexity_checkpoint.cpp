// A perplexity pass's checkpoint contents (perplexity_checkpoint.h).
#include "eval/perplexity_checkpoint.h"

#include "lowbit/format.h"

namespace lowbit {

void write_outliers(const std::map<std::string, OutlierStats>& counts, StatsWriter& out) {
  out.put<uint64_t>(counts.size());
  for (const auto& [name, st] : counts) {
    out.put_string(name);
    out.put(st.outlier_columns);
    out.put(st.columns);
  }
}

void add_outliers(StatsReader& in, std::map<std::string, OutlierStats>& into) {
  for (auto n = in.get<uint64_t>(); n > 0; --n) {
    OutlierStats& st = into[in.get_string()];
    st.outlier_columns += in.get<int64_t>();
    st.columns += in.get<int64_t>();
  }
}

void write_perplexity_sums(const PerplexitySums& s, StatsWriter& out) {
  out.put(s.nll);
  out.put(s.nll2);
  out.put(s.base_nll);
  out.put(s.count);
  out.put(s.top1_same);
  out.put(s.record);
  out.put_doubles(s.klds);
  write_outliers(s.outliers, out);
  out.put(s.seconds);
  out.put_string(s.logits_temp);
  out.put<uint64_t>(s.logits_regions.size());
  for (const FileRegion& r : s.logits_regions) {
    out.put(r.end);
    out.put(r.digest);
  }
}

PerplexitySums read_perplexity_sums(StatsReader& in) {
  PerplexitySums s;
  s.nll = in.get<double>();
  s.nll2 = in.get<double>();
  s.base_nll = in.get<double>();
  s.count = in.get<int64_t>();
  s.top1_same = in.get<int64_t>();
  s.record = in.get<int64_t>();
  s.klds = in.get_doubles();
  add_outliers(in, s.outliers);
  s.seconds = in.get<double>();
  s.logits_temp = in.get_string();
  for (auto n = in.get<uint64_t>(); n > 0; --n) {
    FileRegion r;
    r.end = in.get<uint64_t>();
    r.digest = in.get<uint64_t>();
    s.logits_regions.push_back(r);
  }
  return s;
}

uint64_t perplexity_fingerprint(const Model& model, std::span<const int32_t> scored_tokens, int64_t n_ctx,
                                const PerplexityOptions& o) {
  FingerprintPart what;
  for (const std::string& f : model.files) what.add_file(f);
  what.add(std::to_string(content_digest({reinterpret_cast<const uint8_t*>(scored_tokens.data()), scored_tokens.size_bytes()})));
  what.add(std::to_string(n_ctx) + " " + std::to_string(scored_tokens.size()));
  what.add(std::string("kv ") + (o.kv.format ? std::string(o.kv.format->name) : "f32") + (o.kv.rotate ? " rotated" : ""));
  what.add("act " + o.act.name + " " + (o.act.format ? std::string(o.act.format->name) : "float") + " " +
           std::to_string(o.act.outlier_threshold) + (o.act.per_tensor ? " static" : ""));
  what.add(std::string(o.reference_kernels ? "reference kernels" : "fast kernels") + (o.reference_act_rounding ? ", reference rounding" : ""));
  what.add("base " + o.kld_base_path).add_file(o.kld_base_path);
  what.add("save " + o.save_logits_path);
  what.add(std::to_string(running_build_fingerprint()));
  return what.value();
}

}  // namespace lowbit
