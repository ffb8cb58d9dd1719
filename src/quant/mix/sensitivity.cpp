// measure_sensitivity (lowbit/sensitivity.h): one float pass over the calibration windows
// caches every block's input, the final hidden states, the float log-probabilities and
// each linear input's Σx²; then each matrix × format is quantized alone and run from its
// block on (token_embd from the start, output through the head only).
#include "lowbit/sensitivity.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>

#include "lowbit/arch.h"
#include "lowbit/engine.h"
#include "lowbit/error.h"
#include "lowbit/format.h"
#include "lowbit/gptq.h"
#include "lowbit/hessian.h"
#include "lowbit/kernels.h"
#include "lowbit/recipe.h"
#include "model/layers.h"
#include "quant/format_quantizer.h"

namespace lowbit {
namespace {

int64_t layer_of(const std::string& name) { return name.rfind("blk.", 0) == 0 ? std::stoll(name.substr(4, name.find('.', 4) - 4)) : -1; }

// Row-wise log-softmax of logits: (T, V), in place.
void log_softmax(float* logits, int64_t T, int64_t V) {
  for (int64_t t = 0; t < T; ++t) {
    float* l = logits + t * V;
    const float mx = *std::max_element(l, l + V);
    double sum = 0;
    for (int64_t v = 0; v < V; ++v) sum += std::exp(static_cast<double>(l[v] - mx));
    const float lse = mx + static_cast<float>(std::log(sum));
    for (int64_t v = 0; v < V; ++v) l[v] -= lse;
  }
}

// Σ_t KL(p ‖ q) of two (T, V) log-probability rows.
double kl_sum(const float* logp, const float* logq, int64_t T, int64_t V) {
  double s = 0;
  for (int64_t i = 0; i < T * V; ++i) s += std::exp(static_cast<double>(logp[i])) * (logp[i] - logq[i]);
  return s;
}

// The formats to try on a tensor of `cols` columns: each asked format, or the first of its
// fallbacks that fits (as a recipe would fall back), each once.
std::vector<const Format*> candidates(const std::vector<std::string>& formats, int64_t cols) {
  std::vector<const Format*> out;
  for (const std::string& name : formats) {
    const Format& f = format_by_name(name);
    const Format* fit = format_fits(f, cols) ? &f : nullptr;
    for (const Format* alt : fallback_chain(f)) {
      if (fit == nullptr && format_fits(*alt, cols)) fit = alt;
    }
    if (fit != nullptr && std::find(out.begin(), out.end(), fit) == out.end()) out.push_back(fit);
  }
  return out;
}

struct Linear {
  int64_t layer;
  LayerWeight member;
  std::string group;
};

}  // namespace

SensitivityReport measure_sensitivity(const Model& m, const std::string& calib_path, const SensitivityOptions& o) {
  const ModelConfig& c = m.config;
  const CalibrationSet cs = load_calibration(m, calib_path, o.calib);
  const int64_t S = static_cast<int64_t>(cs.samples.size()), T = static_cast<int64_t>(cs.samples.front().size()), C = c.dim, V = c.vocab_size,
                L = c.n_layers;
  for (const std::string& f : o.formats) format_by_name(f);  // unknown names refused before any work
  if (o.method != "rtn" && o.method != "gptq") throw Error("sensitivity rounds by rtn or gptq", {.value = o.method});
  const ArchLayout& layout = arch_layout(c.architecture);
  std::map<std::string, Linear> linears;  // by GGUF name
  for (int64_t l = 0; l < L; ++l) {
    for (const LinearGroup& g : layout.groups) {
      for (const GroupMember& mem : g.members) linears[(m.layers[l].*mem.weight).name] = {l, mem.weight, g.name};
    }
  }

  // The float pass.
  Engine engine(m, T);
  engine.set_repacking(false);
  std::map<std::pair<int64_t, std::string>, std::vector<double>> h;  // (layer, group) → Σ x² per column
  engine.set_observer([&](const ObservedInput& in) {
    auto& v = h[{in.layer, in.group.name}];
    v.resize(static_cast<size_t>(in.cols), 0.0);
    for (int64_t t = 0; t < in.T; ++t) {
      for (int64_t k = 0; k < in.cols; ++k) v[k] += static_cast<double>(in.x[t * in.cols + k]) * in.x[t * in.cols + k];
    }
  });
  std::vector<std::vector<float>> block_in(static_cast<size_t>(L + 1), std::vector<float>(static_cast<size_t>(S * T * C)));
  std::vector<float> logp(static_cast<size_t>(S * T * V));
  std::vector<double> token_count(static_cast<size_t>(V), 0.0), h_out(static_cast<size_t>(C), 0.0);
  const std::vector<float> norm_out = m.output_norm.to_f32();
  std::vector<float> x(static_cast<size_t>(T * C)), xn(x.size());
  for (int64_t s = 0; s < S; ++s) {
    const auto& tokens = cs.samples[s];
    for (int32_t id : tokens) token_count[id] += 1;
    engine.embed(tokens, x.data());
    for (int64_t l = 0; l < L; ++l) {
      std::copy(x.begin(), x.end(), block_in[l].begin() + s * T * C);
      engine.block(m.layers[l], l, x.data(), T, 0);
    }
    std::copy(x.begin(), x.end(), block_in[L].begin() + s * T * C);
    rmsnorm(x.data(), norm_out.data(), T, C, c.norm_eps, xn.data(), active_isa());
    for (int64_t i = 0; i < T * C; ++i) h_out[i % C] += static_cast<double>(xn[i]) * xn[i];
    engine.head(x.data(), T, logp.data() + s * T * V);
    log_softmax(logp.data() + s * T * V, T, V);
  }
  engine.set_observer(nullptr);

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
  for (const Weight* w : matrices) steps += static_cast<int64_t>(candidates(o.formats, w->cols).size());
  std::vector<float> logq(static_cast<size_t>(T * V));
  const double n_tokens = static_cast<double>(S * T);
  // GPTQ: the Hessians of one block's groups at a time, from its cached float inputs.
  const bool gptq = o.method == "gptq";
  int64_t hessian_layer = -1;
  std::map<std::string, std::vector<double>> hessians;  // group → (cols, cols)
  auto hessian_of = [&](int64_t layer, const std::string& group) -> const std::vector<double>& {
    if (layer != hessian_layer) {
      hessians.clear();
      std::map<std::string, std::unique_ptr<HessianAccumulator>> acc;
      engine.set_observer([&](const ObservedInput& in) {
        auto& a = acc[in.group.name];
        if (!a) a = std::make_unique<HessianAccumulator>(in.cols);
        a->add(in.x, in.T);
      });
      for (int64_t s = 0; s < S; ++s) {
        std::copy_n(block_in[layer].begin() + s * T * C, T * C, x.begin());
        engine.block(m.layers[layer], layer, x.data(), T, 0);
      }
      engine.set_observer(nullptr);
      for (auto& [name, a] : acc) hessians[name] = a->take_hessian();
      hessian_layer = layer;
    }
    return hessians.at(group);
  };
  for (const Weight* w : matrices) {
    const std::vector<float> values = w->to_f32();
    const bool embedding = w->name == "token_embd.weight";
    const auto lin = linears.find(w->name);
    // The proxy's column (or, for the embedding, row) weights.
    std::vector<double> weight_of;
    if (lin != linears.end()) {
      weight_of = h.at({lin->second.layer, lin->second.group});
    } else if (!embedding) {
      weight_of = h_out;
    }
    TensorSensitivity ts{w->name, layer_of(w->name), w->rows, w->cols, {}};
    double signal = 0;  // Σ W² h: the matrix's own output energy on the calibration inputs
    for (int64_t row = 0; row < w->rows; ++row) {
      for (int64_t col = 0; col < w->cols; ++col) {
        signal += static_cast<double>(values[row * w->cols + col]) * values[row * w->cols + col] * (embedding ? token_count[row] : weight_of[col]);
      }
    }
    for (const Format* f : candidates(o.formats, w->cols)) {
      std::vector<uint8_t> encoded;
      if (gptq && lin != linears.end() && f->fit_round != nullptr) {  // GPTQ into the format, as quantize --method gptq rounds
        FormatQuantizer quantizer(*f, w->rows, w->cols, values);
        try {
          gptq_quantize(values, w->rows, w->cols, hessian_of(lin->second.layer, lin->second.group), quantizer, GptqOptions{});
          encoded = quantizer.take_bytes();
        } catch (const Error&) {  // H singular: rounded to nearest, as the pipeline does
          encoded = quantize_tensor(*f, values, w->rows, w->cols);
        }
      } else {
        encoded = quantize_tensor(*f, values, w->rows, w->cols);
      }
      const auto bytes = std::make_shared<const std::vector<uint8_t>>(std::move(encoded));
      const std::vector<float> dq = dequantize_tensor(*f, *bytes, w->rows, w->cols);
      SensitivityChoice choice{std::string(f->name), bytes->size(), 0, -1};
      double proxy = 0;
      for (int64_t row = 0; row < w->rows; ++row) {
        for (int64_t col = 0; col < w->cols; ++col) {
          const double d = dq[row * w->cols + col] - values[row * w->cols + col];
          proxy += d * d * (embedding ? token_count[row] : weight_of[col]);
        }
      }
      choice.proxy = proxy / n_tokens;
      choice.relative = signal > 0 ? proxy / signal : 0;
      if (o.measure) {
        const Weight q{w->name, f, w->rows, w->cols, *bytes, bytes};
        double kl = 0;
        if (lin != linears.end()) {  // from its block on
          LayerWeights lw = m.layers[lin->second.layer];
          lw.*(lin->second.member) = q;
          for (int64_t s = 0; s < S; ++s) {
            std::copy_n(block_in[lin->second.layer].begin() + s * T * C, T * C, x.begin());
            for (int64_t l = lin->second.layer; l < L; ++l) engine.block(l == lin->second.layer ? lw : m.layers[l], l, x.data(), T, 0);
            engine.head(x.data(), T, logq.data());
            log_softmax(logq.data(), T, V);
            kl += kl_sum(logp.data() + s * T * V, logq.data(), T, V);
          }
        } else {  // token_embd (and, tied, the head) or output: a model with it replaced
          Model copy = m;
          (embedding ? copy.token_embd : copy.output) = q;
          Engine e(copy, T);
          e.set_repacking(false);
          for (int64_t s = 0; s < S; ++s) {
            if (embedding) {
              e.embed(cs.samples[s], x.data());
              for (int64_t l = 0; l < L; ++l) e.block(copy.layers[l], l, x.data(), T, 0);
            } else {
              std::copy_n(block_in[L].begin() + s * T * C, T * C, x.begin());
            }
            e.head(x.data(), T, logq.data());
            log_softmax(logq.data(), T, V);
            kl += kl_sum(logp.data() + s * T * V, logq.data(), T, V);
          }
        }
        choice.kld = std::max(0.0, kl / n_tokens);
      }
      ts.choices.push_back(choice);
      if (o.progress) o.progress(++done, steps, w->name + " " + std::string(f->name));
    }
    r.tensors.push_back(std::move(ts));
  }
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
