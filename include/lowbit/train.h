// The training engine (src/train/): a float32 copy of a Llama model's parameters, a
// forward pass that saves its activations, and the backward pass of every layer, giving
// d loss / d parameter for the mean next-token cross-entropy of a batch.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "lowbit/model.h"

namespace lowbit {

// One parameter by its Hugging Face name (model.embed_tokens.weight,
// model.layers.N.self_attn.q_proj.weight, ..., lm_head.weight); q/k rows in Hugging Face's
// rotate-half order whatever the file's. A norm is (1, C).
struct TrainTensor {
  std::string name;
  int64_t rows = 0, cols = 0;
  std::vector<float> value, grad;
};

class TrainModel {
 public:
  // Every weight decoded to f32. An Error naming the model for what the training engine
  // does not run yet: biases, q/k norms, RoPE scaling, a sliding window.
  explicit TrainModel(const Model& model);
  ~TrainModel();
  TrainModel(const TrainModel&) = delete;
  TrainModel& operator=(const TrainModel&) = delete;

  // tokens: (B, T + 1) row-major; inputs [:, :T], targets [:, 1:]. Returns the mean
  // cross-entropy over the B·T targets and ADDS its gradient into every grad.
  float forward_backward(std::span<const int32_t> tokens, int64_t B, int64_t T);
  // The loss alone.
  float loss(std::span<const int32_t> tokens, int64_t B, int64_t T);
  void zero_grad();

  std::vector<TrainTensor>& params() { return params_; }
  TrainTensor& param(const std::string& name);  // Error naming it when absent
  const ModelConfig& config() const { return config_; }

 private:
  struct Activations;
  float run(std::span<const int32_t> tokens, int64_t B, int64_t T, bool backward);
  ModelConfig config_;
  std::vector<TrainTensor> params_;
  std::string source_;
};

}  // namespace lowbit
