// measure_sensitivity (lowbit/sensitivity.h): one float pass over the calibration windows
// (FloatRun) caches every block's input, the float log-probabilities and each linear
// input's Σx²; then each matrix × format is quantized alone and run from its block on
// (token_embd from the start, output through the head only).
#include "lowbit/sensitivity.h"

#include "lowbit/cluster.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>

#include "lowbit/engine.h"
#include "lowbit/error.h"
#include "lowbit/format.h"
#include "quant/mix/float_run.h"

namespace lowbit {

SensitivityReport measure_sensitivity(const Model& m, const std::string& calib_path, const SensitivityOptions& o) {
  for (const std::string& f : o.formats) format_by_name(f);  // unknown names refused before any work
  if (o.method != "rtn" && o.method != "gptq") throw Error("sensitivity rounds by rtn or gptq", {.value = o.method});
  const CalibrationSet cs = load_calibration(m, calib_path, o.calib);
  FloatRun run(m, cs);
  const int64_t S = run.S, T = run.T, C = run.C, V = run.V, L = run.L;
  Engine& engine = run.engine;

  SensitivityReport r;
  r.calib = calib_path;
  r.samples = S;
  r.length = T;
  r.measured = o.measure;
  r.method = o.method;
  r.formats = o.formats;
  r.fingerprint = model_fingerprint(m);
  std::vector<const Weight*> matrices;
  for (const Weight* w : m.weights()) {
    if (w->rows > 1) matrices.push_back(w);
  }
  int64_t steps = 0, done = 0;
  for (const Weight* w : matrices) steps += static_cast<int64_t>(candidate_formats(o.formats, w->cols).size());
  std::vector<float> x(static_cast<size_t>(T * C)), logq(static_cast<size_t>(T * V));
  const double n_tokens = static_cast<double>(S * T);
  // The checkpoint: every matrix's result so far (in order), exact. What they depend on:
  // the model's files, the calibration text and options, the formats, the method, the build.
  FingerprintPart what;
  for (const std::string& f : m.files) what.add_file(f);
  what.add_file(calib_path).add(r.fingerprint).add(o.method).add(std::to_string(o.measure));
  what.add(std::to_string(o.calib.samples) + " " + std::to_string(o.calib.length) + " " + std::to_string(o.calib.seed));
  for (const std::string& f : o.formats) what.add(f);
  what.add(std::to_string(running_build_fingerprint()));
  // Results travel as bytes: the checkpoint's, and under mpirun each rank's matrices.
  auto write_tensor = [](const TensorSensitivity& t, StatsWriter& out) {
    out.put_string(t.name);
    out.put(t.layer);
    out.put(t.rows);
    out.put(t.cols);
    out.put<uint64_t>(t.choices.size());
    for (const SensitivityChoice& c : t.choices) {
      out.put_string(c.format);
      out.put(c.bytes);
      out.put(c.proxy);
      out.put(c.relative);
      out.put(c.kld);
    }
  };
  auto read_tensor = [](StatsReader& in) {
    TensorSensitivity ts{in.get_string(), in.get<int64_t>(), in.get<int64_t>(), in.get<int64_t>(), {}};
    const auto n = in.get<uint64_t>();
    for (uint64_t k = 0; k < n; ++k) {
      SensitivityChoice c{in.get_string(), in.get<uint64_t>(), in.get<double>(), in.get<double>(), in.get<double>()};
      ts.choices.push_back(c);
    }
    return ts;
  };
  Cluster& ranks = cluster();
  StatsCheckpointer saver(ranks.is_root() ? o.checkpoint : StatsCheckpoint{}, "sensitivity", what.value());
  StatsWriter kept;  // the checkpoint's matrices, rank 0's, for every rank
  if (auto saved = saver.load()) {
    for (int64_t i = 0; i < saved->done; ++i) {
      TensorSensitivity ts = read_tensor(saved->stats);
      if (i >= static_cast<int64_t>(matrices.size()) || ts.name != matrices[i]->name) {
        throw Error("--resume: the checkpoint's matrices are not this model's", {.file = o.checkpoint.path, .tensor = ts.name});
      }
      write_tensor(ts, kept);
    }
  }
  if (o.resume_note != nullptr) *o.resume_note = saver.note();
  std::vector<uint8_t> shared = kept.bytes();
  ranks.broadcast(shared);
  for (StatsReader in(shared, "sensitivity checkpoint"); !in.done();) {
    r.tensors.push_back(read_tensor(in));
    done += static_cast<int64_t>(r.tensors.back().choices.size());
  }
  auto save = [&] {
    StatsWriter out;
    for (const TensorSensitivity& t : r.tensors) write_tensor(t, out);
    saver.save(static_cast<int64_t>(r.tensors.size()), out);
  };
  // One matrix, quantized into each candidate: its proxy and (measured) KLD.
  auto measure_one = [&](const Weight* w) {
    const std::vector<float> values = w->to_f32();
    const bool embedding = w->name == "token_embd.weight";
    const auto lin = run.linears.find(w->name);
    // The proxy's column (or, for the embedding, row) weights.
    std::vector<double> weight_of;
    if (lin != run.linears.end()) {
      weight_of = run.h.at({lin->second.layer, lin->second.group});
    } else if (!embedding) {
      weight_of = run.h_out;
    }
    TensorSensitivity ts{w->name, layer_of_name(w->name), w->rows, w->cols, {}};
    // A tied embedding is also the head: its error weighs by token counts and by the head's inputs.
    const bool tied = embedding && m.config.tied_output;
    auto weight_at = [&](int64_t row, int64_t col) { return embedding ? run.token_count[row] + (tied ? run.h_out[col] : 0.0) : weight_of[col]; };
    double signal = 0;  // Σ W² h: the matrix's own output energy on the calibration inputs
    for (int64_t row = 0; row < w->rows; ++row) {
      for (int64_t col = 0; col < w->cols; ++col) signal += static_cast<double>(values[row * w->cols + col]) * values[row * w->cols + col] * weight_at(row, col);
    }
    for (const Format* f : candidate_formats(o.formats, w->cols)) {
      const auto bytes = std::make_shared<const std::vector<uint8_t>>(run.round(*w, *f, o.method));
      const std::vector<float> dq = dequantize_tensor(*f, *bytes, w->rows, w->cols);
      SensitivityChoice choice{std::string(f->name), bytes->size(), 0, -1};
      double proxy = 0;
      for (int64_t row = 0; row < w->rows; ++row) {
        for (int64_t col = 0; col < w->cols; ++col) {
          const double d = dq[row * w->cols + col] - values[row * w->cols + col];
          proxy += d * d * weight_at(row, col);
        }
      }
      choice.proxy = proxy / n_tokens;
      choice.relative = signal > 0 ? proxy / signal : 0;
      if (o.measure) {
        const Weight q{w->name, f, w->rows, w->cols, *bytes, bytes};
        double kl = 0;
        if (lin != run.linears.end()) {  // from its block on
          LayerWeights lw = m.layers[lin->second.layer];
          lw.*(lin->second.member) = q;
          for (int64_t s = 0; s < S; ++s) {
            std::copy_n(run.block_in[lin->second.layer].begin() + s * T * C, T * C, x.begin());
            for (int64_t l = lin->second.layer; l < L; ++l) engine.block(l == lin->second.layer ? lw : m.layers[l], l, x.data(), T, 0);
            engine.head(x.data(), T, logq.data());
            log_softmax_rows(logq.data(), T, V);
            kl += kl_sum(run.logp.data() + s * T * V, logq.data(), T, V);
          }
        } else {  // token_embd (and, tied, the head) or output: a model with it replaced
          Model copy = m;
          (embedding ? copy.token_embd : copy.output) = q;
          if (embedding && m.config.tied_output) {  // the head reads the same matrix, held apart as output (model.h)
            copy.output = q;
            copy.output.name = "output.weight";
          }
          Engine e(copy, T);  // repacked, as eval runs it (unrepacked quantized heads are slow where no fused kernel exists)
          for (int64_t s = 0; s < S; ++s) {
            if (embedding) {
              e.embed(cs.samples[s], x.data());
              for (int64_t l = 0; l < L; ++l) e.block(copy.layers[l], l, x.data(), T, 0);
            } else {
              std::copy_n(run.block_in[L].begin() + s * T * C, T * C, x.begin());
            }
            e.head(x.data(), T, logq.data());
            log_softmax_rows(logq.data(), T, V);
            kl += kl_sum(run.logp.data() + s * T * V, logq.data(), T, V);
          }
        }
        choice.kld = std::max(0.0, kl / n_tokens);
      }
      ts.choices.push_back(choice);
      if (o.progress && ranks.size() == 1) o.progress(++done, steps, w->name + " " + std::string(f->name));
    }
    return ts;
  };
  // Round by round: matrix round + k on rank k (one process: one matrix a round); every
  // rank gets every result, in the matrices' order.
  const size_t N = static_cast<size_t>(ranks.size());
  for (size_t round = r.tensors.size(); round < matrices.size(); round += N) {
    StatsWriter mine;
    if (const size_t i = round + static_cast<size_t>(ranks.rank()); i < matrices.size()) write_tensor(measure_one(matrices[i]), mine);
    for (StatsReader in(ranks.gather_to_all(mine.bytes()), "sensitivity results"); !in.done();) {
      r.tensors.push_back(read_tensor(in));
      if (N > 1) {
        done += static_cast<int64_t>(r.tensors.back().choices.size());
        if (o.progress) o.progress(done, steps, r.tensors.back().name);
      }
    }
    if (saver.due() && r.tensors.size() < matrices.size()) save();
  }
  saver.finish();
  if (o.measure) {
    for (const std::string& name : o.formats) {
      std::vector<double> proxy, relative, kld;
      for (const TensorSensitivity& t : r.tensors) {
        for (const SensitivityChoice& ch : t.choices) {
          if (ch.format == name) {
            proxy.push_back(ch.proxy);
            relative.push_back(ch.relative);
            kld.push_back(ch.kld);
          }
        }
      }
      if (proxy.size() >= 3) r.rank_correlation.emplace_back(name, spearman(proxy, kld));
      if (proxy.size() >= 3) r.rank_correlation.emplace_back(name + " relative", spearman(relative, kld));
    }
  }
  return r;
}

double spearman(const std::vector<double>& a, const std::vector<double>& b) {
  auto ranks = [](const std::vector<double>& v) {
    std::vector<size_t> idx(v.size());
    for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
    std::sort(idx.begin(), idx.end(), [&](size_t x, size_t y) { return v[x] < v[y]; });
    std::vector<double> r(v.size());
    for (size_t i = 0; i < idx.size();) {
      size_t j = i;
      while (j + 1 < idx.size() && v[idx[j + 1]] == v[idx[i]]) ++j;
      for (size_t k = i; k <= j; ++k) r[idx[k]] = 0.5 * static_cast<double>(i + j);  // ties: their average rank
      i = j + 1;
    }
    return r;
  };
  const std::vector<double> ra = ranks(a), rb = ranks(b);
  const double n = static_cast<double>(a.size()), mean = (n - 1) / 2;
  double sab = 0, saa = 0, sbb = 0;
  for (size_t i = 0; i < ra.size(); ++i) {
    sab += (ra[i] - mean) * (rb[i] - mean);
    saa += (ra[i] - mean) * (ra[i] - mean);
    sbb += (rb[i] - mean) * (rb[i] - mean);
  }
  return saa > 0 && sbb > 0 ? sab / std::sqrt(saa * sbb) : 0.0;
}

}  // namespace lowbit
