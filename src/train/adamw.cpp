// AdamW as torch.optim.AdamW computes it (decoupled weight decay, bias corrections applied
// to the step size and to sqrt(v)), in float32 like PyTorch's single-tensor path.
#include <cmath>

#include "lowbit/train.h"

namespace lowbit {

void AdamW::step(std::vector<TrainTensor>& params) {
  if (m_.size() < params.size()) {
    m_.resize(params.size());
    v_.resize(params.size());
  }
  ++t_;
  const float bc1 = 1.0f - std::pow(o_.beta1, static_cast<float>(t_)), bc2 = 1.0f - std::pow(o_.beta2, static_cast<float>(t_));
  const float bc2_sqrt = std::sqrt(bc2);
  for (size_t k = 0; k < params.size(); ++k) {
    TrainTensor& p = params[k];
    if (!p.trainable) continue;
    const float lr = o_.lr * p.lr_mult, step_size = lr / bc1;
    std::vector<float>& m = m_[k];
    std::vector<float>& v = v_[k];
    if (m.empty()) {
      m.assign(p.value.size(), 0.0f);
      v.assign(p.value.size(), 0.0f);
    }
    for (size_t i = 0; i < p.value.size(); ++i) {
      const float g = p.grad[i];
      p.value[i] *= 1.0f - lr * o_.weight_decay;
      m[i] = m[i] * o_.beta1 + (1.0f - o_.beta1) * g;   // exp_avg.lerp_(grad, 1 - beta1)
      v[i] = v[i] * o_.beta2 + (1.0f - o_.beta2) * g * g;
      const float denom = std::sqrt(v[i]) / bc2_sqrt + o_.eps;
      p.value[i] -= step_size * m[i] / denom;
    }
  }
}

}  // namespace lowbit
