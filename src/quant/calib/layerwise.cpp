// The layer-wise driver (see lowbit/layerwise.h).
#include "lowbit/layerwise.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "lowbit/error.h"

namespace lowbit {
namespace {

// A weight holding its own bytes in `format` (the engine runs any format).
Weight owning_weight(const Weight& like, const Format* format, std::vector<uint8_t> bytes) {
  Weight w = like;
  auto owned = std::make_shared<const std::vector<uint8_t>>(std::move(bytes));
  w.format = format;
  w.data = *owned;
  w.owned = owned;
  return w;
}

std::vector<uint8_t> f32_bytes(const std::vector<float>& v) {
  std::vector<uint8_t> b(v.size() * sizeof(float));
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

}  // namespace

Weight make_f32_weight(const Weight& like, const std::vector<float>& values) {
  return owning_weight(like, &format_by_name("f32"), f32_bytes(values));
}

// Runs the driver's stored block inputs through one block, up to a group's input.
class LayerwiseQuantizer::Probe final : public BlockProbe {
 public:
  Probe(LayerwiseQuantizer& q, int64_t layer) : q_(q), layer_(layer) {}
  void group_inputs(const LayerWeights& w, int g,
                    const std::function<void(int64_t, const float*, int64_t, int64_t)>& fn) override {
    const int64_t dim = q_.model_.config.dim, T = q_.length_;
    const LinearGroup& group = q_.engine_.layout().groups.at(g);
    std::vector<float> x(T * dim);
    for (int64_t s = 0; s < samples(); ++s) {
      q_.engine_.set_observer([&](const ObservedInput& in) {
        if (&in.group == &group) fn(s, in.x, in.T, in.cols);
      });
      std::copy_n(q_.x_.data() + s * T * dim, T * dim, x.data());
      q_.engine_.block(w, layer_, x.data(), T, 0, g);
    }
    q_.engine_.set_observer({});
  }
  int64_t samples() const override { return static_cast<int64_t>(q_.calib_.samples.size()); }

 private:
  LayerwiseQuantizer& q_;
  int64_t layer_;
};

LayerwiseQuantizer::LayerwiseQuantizer(const Model& model, CalibrationSet calibration, TargetFn target,
                                       LayerwiseProgress progress)
    : model_(model), calib_(std::move(calibration)), target_(std::move(target)), progress_(std::move(progress)),
      engine_(model, calib_.samples.empty() ? 1 : static_cast<int64_t>(calib_.samples.front().size())) {
  engine_.set_repacking(false);  // memory of one block, not of a repacked model
  if (calib_.samples.empty()) throw Error("no calibration samples", {.file = calib_.source});
  length_ = static_cast<int64_t>(calib_.samples.front().size());
  const int64_t dim = model.config.dim;
  x_.resize(calib_.samples.size() * length_ * dim);
  for (size_t s = 0; s < calib_.samples.size(); ++s) {
    if (static_cast<int64_t>(calib_.samples[s].size()) != length_) throw Error("calibration samples differ in length");
    engine_.embed(calib_.samples[s], x_.data() + s * length_ * dim);
  }
}

LayerwiseQuantizer::~LayerwiseQuantizer() = default;

void LayerwiseQuantizer::resume_at(int64_t block, std::vector<float> inputs) {
  if (block < 0 || block > model_.config.n_layers || inputs.size() != x_.size()) {
    throw Error("saved block inputs do not fit this calibration set", {.value = std::to_string(inputs.size()) + " != " + std::to_string(x_.size())});
  }
  next_ = block;
  x_ = std::move(inputs);
}

std::map<std::string, QuantizedTensor> LayerwiseQuantizer::next_block() {
  const int64_t l = next_++;
  if (l >= model_.config.n_layers) throw Error("all blocks are quantized");
  const int64_t dim = model_.config.dim, S = static_cast<int64_t>(calib_.samples.size());
  const ArchLayout& layout = engine_.layout();
  const Format& f32 = format_by_name("f32");
  LayerWeights work = model_.layers[l];  // quantized members replace these as they are done
  std::map<std::string, QuantizedTensor> out;
  std::vector<float> x(length_ * dim);
  // Methods that rewrite the float block first (AWQ), each once with its first linear's options.
  std::map<std::string, MethodConfig> used;
  for (const LinearGroup& group : layout.groups) {
    for (const auto& m : group.members) {
      const MethodConfig c = target_(work.*m.weight, l).method;
      if (method_by_name(c.name).needs_calibration) used.emplace(c.name, c);
    }
  }
  Probe probe(*this, l);
  for (const auto& [name, config] : used) {
    auto& slot = methods_[name];
    if (!slot) slot = method_by_name(name).make();
    slot->prepare_block(l, layout, work, probe, [&](const Weight& w) { return target_(w, l).format; }, config);
  }
  for (size_t g = 0; g < layout.groups.size(); ++g) {
    const LinearGroup& group = layout.groups[g];
    if (progress_) progress_(l, model_.config.n_layers, static_cast<int64_t>(g), static_cast<int64_t>(layout.groups.size()));
    // Which members a calibrated method quantizes; they share the group's input.
    std::vector<LinearTarget> targets;
    CalibratedMethod* method = nullptr;
    for (const auto& m : group.members) {
      targets.push_back(target_(work.*m.weight, l));
      const Method& row = method_by_name(targets.back().method.name);
      if (!row.needs_calibration) continue;
      auto& slot = methods_[row.name];
      if (!slot) slot = row.make();
      if (method != nullptr && method != slot.get()) {
        throw Error("linears sharing an input must use one calibrated method", {.tensor = (work.*m.weight).name});
      }
      method = slot.get();
    }
    float absmax = 0;
    if (method != nullptr || record_absmax_) {
      const int64_t cols = (work.*group.members.front().weight).cols;
      if (method != nullptr) method->begin_group(group, cols);
      engine_.set_observer([&](const ObservedInput& in) {
        if (&in.group != &group) return;
        if (method != nullptr) method->observe(in.x, in.T);
        if (!record_absmax_) return;
        for (int64_t i = 0; i < in.T * in.cols; ++i) absmax = std::max(absmax, std::fabs(in.x[i]));
      });
      for (int64_t s = 0; s < S; ++s) {
        std::copy_n(x_.data() + s * length_ * dim, length_ * dim, x.data());
        engine_.block(work, l, x.data(), length_, 0, static_cast<int>(g));
      }
      engine_.set_observer({});
    }
    for (size_t i = 0; i < group.members.size(); ++i) {
      Weight& w = work.*group.members[i].weight;
      const LinearTarget& t = targets[i];
      std::vector<uint8_t> bytes;
      if (method_by_name(t.method.name).needs_calibration) {
        bytes = method->quantize(w.name, w.to_f32(), w.rows, w.cols, *t.format, t.method);
      } else if (t.format == w.format) {
        bytes.assign(w.data.begin(), w.data.end());
      } else {
        bytes = quantize_tensor(*t.format, w.to_f32(), w.rows, w.cols, t.importance.empty() ? nullptr : t.importance.data());
      }
      w = owning_weight(w, t.format, bytes);
      out[w.name] = {t.format, std::move(bytes), absmax};
    }
  }
  // The block's vectors, as the methods left them (AWQ folds scales into norms and the v
  // bias): norms, biases and q/k norms where the architecture has them.
  for (const LayerWeight vec : {&LayerWeights::attn_norm, &LayerWeights::ffn_norm, &LayerWeights::attn_q_bias, &LayerWeights::attn_k_bias,
                                &LayerWeights::attn_v_bias, &LayerWeights::attn_output_bias, &LayerWeights::attn_q_norm,
                                &LayerWeights::attn_k_norm}) {
    const Weight& w = work.*vec;
    if (w.format != nullptr) out[w.name] = {&f32, f32_bytes(w.to_f32())};
  }
  // The next block's inputs: this block, quantized, on every sample.
  for (int64_t s = 0; s < S; ++s) engine_.block(work, l, x_.data() + s * length_ * dim, length_, 0);
  return out;
}

}  // namespace lowbit
