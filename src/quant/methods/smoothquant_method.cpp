// SmoothQuant (Xiao et al. 2022), following mit-han-lab/smoothquant's smooth.py
// (../shared/docs/ALGORITHMS.md): for each group of linears fed by an RMSNorm (q/k/v after
// input_layernorm, gate/up after post_attention_layernorm), per input channel j
//   s_j = max|X_j|^α / max|W_j|^(1-α), clamped at 1e-5,
// with max|X_j| over every calibration token and max|W_j| over the rows of all the group's
// members (itself clamped at 1e-5); the norm weight is divided by s and the members' columns
// multiplied by it, so the float block computes the same function while the activations'
// outlier channels shrink. The members are then rounded to nearest in the target format
// (int8 per output channel for W8A8). Groups fed by a linear (o_proj, down_proj) are left
// as smooth.py leaves them with linear-fed=false; by default (true) the feeding linear's rows (v for
// o_proj when the heads are not grouped, up for down_proj) take 1/s, as AWQ folds them.
// down_proj's input holds the block's largest activations, the ones static per-tensor
// scales cannot cover.
#include "quant/methods/smoothquant_method.h"

#include <algorithm>
#include <cmath>

#include "lowbit/error.h"
#include "quant/methods/fold_scales.h"

namespace lowbit {
namespace {

class SmoothQuantMethod final : public CalibratedMethod {
 public:
  void prepare_block(int64_t, const ArchLayout& layout, LayerWeights& work, BlockProbe& probe,
                     const std::function<const Format*(const Weight&)>&, const MethodConfig& config) override {
    const double alpha = method_option_number(config, "alpha");
    if (!(alpha >= 0 && alpha <= 1)) throw Error("SmoothQuant: alpha must be in [0, 1]", {.value = std::to_string(alpha)});
    const bool linear_fed = method_option_flag(config, "linear-fed");
    for (size_t g = 0; g < layout.groups.size(); ++g) {
      const LinearGroup& group = layout.groups[g];
      // A linear feeding the group takes the scales in its rows when its outputs are the
      // group's inputs one to one (up → down; v → o without grouped heads).
      const bool by_linear = linear_fed && group.fed_by_linear && (work.*group.fed_by_linear).rows == (work.*group.members.front().weight).cols;
      if (!group.fed_by_norm && !by_linear) continue;
      std::vector<float> act_max;
      probe.group_inputs(work, static_cast<int>(g), [&](int64_t, const float* x, int64_t T, int64_t cols) {
        act_max.resize(static_cast<size_t>(cols), 0.0f);
        for (int64_t t = 0; t < T; ++t) {
          for (int64_t j = 0; j < cols; ++j) act_max[j] = std::max(act_max[j], std::fabs(x[t * cols + j]));
        }
      });
      const int64_t cols = static_cast<int64_t>(act_max.size());
      std::vector<float> w_max(static_cast<size_t>(cols), 0.0f);
      for (const auto& m : group.members) {
        const Weight& w = work.*m.weight;
        const std::vector<float> v = w.to_f32();
        for (int64_t r = 0; r < w.rows; ++r) {
          for (int64_t j = 0; j < cols; ++j) w_max[j] = std::max(w_max[j], std::fabs(v[r * cols + j]));
        }
      }
      std::vector<float> s(static_cast<size_t>(cols));
      for (int64_t j = 0; j < cols; ++j) {
        const double ws = std::max(1e-5, static_cast<double>(w_max[j]));
        s[j] = static_cast<float>(std::max(1e-5, std::pow(static_cast<double>(act_max[j]), alpha) / std::pow(ws, 1 - alpha)));
      }
      fold_input_scales(group, work, s);
    }
  }
  void begin_group(const LinearGroup&, int64_t) override {}
  void observe(const float*, int64_t) override {}
  std::vector<uint8_t> quantize(const std::string&, std::vector<float> w, int64_t rows, int64_t cols, const Format& format,
                                const MethodConfig&) override {
    return quantize_tensor(format, w, rows, cols);
  }
};

}  // namespace

std::unique_ptr<CalibratedMethod> make_smoothquant_method() { return std::make_unique<SmoothQuantMethod>(); }

}  // namespace lowbit
