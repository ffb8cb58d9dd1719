// FloatRun (float_run.h): one float pass over the calibration windows.
#include "quant/mix/float_run.h"

#include <algorithm>
#include <cmath>
#include <memory>

#include "lowbit/error.h"
#include "lowbit/gptq.h"
#include "lowbit/recipe.h"
#include "lowbit/hessian.h"
#include "lowbit/kernels.h"
#include "model/layers.h"
#include "quant/format_quantizer.h"

namespace lowbit {

int64_t layer_of_name(const std::string& name) { return name.rfind("blk.", 0) == 0 ? std::stoll(name.substr(4, name.find('.', 4) - 4)) : -1; }

void log_softmax_rows(float* logits, int64_t T, int64_t V) {
  for (int64_t t = 0; t < T; ++t) {
    float* l = logits + t * V;
    const float mx = *std::max_element(l, l + V);
    double sum = 0;
    for (int64_t v = 0; v < V; ++v) sum += std::exp(static_cast<double>(l[v] - mx));
    const float lse = mx + static_cast<float>(std::log(sum));
    for (int64_t v = 0; v < V; ++v) l[v] -= lse;
  }
}

double kl_sum(const float* logp, const float* logq, int64_t T, int64_t V) {
  double s = 0;
  for (int64_t i = 0; i < T * V; ++i) s += std::exp(static_cast<double>(logp[i])) * (logp[i] - logq[i]);
  return s;
}

std::vector<const Format*> candidate_formats(const std::vector<std::string>& formats, int64_t cols) {
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

FloatRun::FloatRun(const Model& m, const CalibrationSet& calib)
    : model(m), cs(calib), S(static_cast<int64_t>(calib.samples.size())), T(static_cast<int64_t>(calib.samples.front().size())),
      C(m.config.dim), V(m.config.vocab_size), L(m.config.n_layers), engine(m, T) {
  engine.set_repacking(false);
  const ArchLayout& layout = arch_layout(m.config.architecture);
  for (int64_t l = 0; l < L; ++l) {
    for (const LinearGroup& g : layout.groups) {
      for (const GroupMember& mem : g.members) linears[(m.layers[l].*mem.weight).name] = {l, mem.weight, g.name};
    }
  }
  engine.set_observer([&](const ObservedInput& in) {
    auto& v = h[{in.layer, in.group.name}];
    v.resize(static_cast<size_t>(in.cols), 0.0);
    for (int64_t t = 0; t < in.T; ++t) {
      for (int64_t k = 0; k < in.cols; ++k) v[k] += static_cast<double>(in.x[t * in.cols + k]) * in.x[t * in.cols + k];
    }
  });
  block_in.assign(static_cast<size_t>(L + 1), std::vector<float>(static_cast<size_t>(S * T * C)));
  logp.resize(static_cast<size_t>(S * T * V));
  token_count.assign(static_cast<size_t>(V), 0.0);
  h_out.assign(static_cast<size_t>(C), 0.0);
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
    rmsnorm(x.data(), norm_out.data(), T, C, m.config.norm_eps, xn.data(), active_isa());
    for (int64_t i = 0; i < T * C; ++i) h_out[i % C] += static_cast<double>(xn[i]) * xn[i];
    engine.head(x.data(), T, logp.data() + s * T * V);
    log_softmax_rows(logp.data() + s * T * V, T, V);
  }
  engine.set_observer(nullptr);
}

const std::vector<double>& FloatRun::hessian_of(int64_t layer, const std::string& group) {
  if (layer != hessian_layer_) {
    hessians_.clear();
    std::map<std::string, std::unique_ptr<HessianAccumulator>> acc;
    engine.set_observer([&](const ObservedInput& in) {
      auto& a = acc[in.group.name];
      if (!a) a = std::make_unique<HessianAccumulator>(in.cols);
      a->add(in.x, in.T);
    });
    std::vector<float> x(static_cast<size_t>(T * C));
    for (int64_t s = 0; s < S; ++s) {
      std::copy_n(block_in[layer].begin() + s * T * C, T * C, x.begin());
      engine.block(model.layers[layer], layer, x.data(), T, 0);
    }
    engine.set_observer(nullptr);
    for (auto& [name, a] : acc) hessians_[name] = a->take_hessian();
    hessian_layer_ = layer;
  }
  return hessians_.at(group);
}

std::vector<uint8_t> FloatRun::round(const Weight& w, const Format& f, const std::string& method) {
  const std::vector<float> values = w.to_f32();
  const auto lin = linears.find(w.name);
  if (method == "gptq" && lin != linears.end() && f.fit_round != nullptr) {
    FormatQuantizer quantizer(f, w.rows, w.cols, values);
    try {
      gptq_quantize(values, w.rows, w.cols, hessian_of(lin->second.layer, lin->second.group), quantizer, GptqOptions{});
      return quantizer.take_bytes();
    } catch (const Error&) {  // H singular
    }
  }
  return quantize_tensor(f, values, w.rows, w.cols);
}

}  // namespace lowbit
