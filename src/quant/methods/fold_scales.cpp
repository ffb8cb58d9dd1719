// fold_input_scales (fold_scales.h).
#include "quant/methods/fold_scales.h"

#include "lowbit/methods.h"

namespace lowbit {

void fold_input_scales(const LinearGroup& group, LayerWeights& work, const std::vector<float>& s) {
  const int64_t cols = static_cast<int64_t>(s.size());
  if (group.fed_by_norm) {
    Weight& norm = work.*group.fed_by_norm;
    std::vector<float> v = norm.to_f32();
    for (int64_t j = 0; j < cols; ++j) v[j] /= s[j];
    norm = make_f32_weight(norm, v);
  } else {
    Weight& prev = work.*group.fed_by_linear;
    std::vector<float> v = prev.to_f32();
    for (int64_t r = 0; r < prev.rows; ++r) {
      for (int64_t c = 0; c < prev.cols; ++c) v[r * prev.cols + c] /= s[r];
    }
    prev = make_f32_weight(prev, v);
    if (group.fed_by_bias && (work.*group.fed_by_bias).format != nullptr) {  // (W x + b) / s: the bias too
      Weight& bias = work.*group.fed_by_bias;
      std::vector<float> b = bias.to_f32();
      for (int64_t r = 0; r < bias.cols; ++r) b[r] /= s[r];
      bias = make_f32_weight(bias, b);
    }
  }
  for (const auto& m : group.members) {
    Weight& w = work.*m.weight;
    std::vector<float> v = w.to_f32();
    for (int64_t r = 0; r < w.rows; ++r) {
      for (int64_t j = 0; j < cols; ++j) v[r * cols + j] *= s[j];
    }
    w = make_f32_weight(w, v);
  }
}

}  // namespace lowbit
