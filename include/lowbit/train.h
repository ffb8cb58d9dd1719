// The training engine (src/train/): a float32 copy of a Llama model's parameters, a
// forward pass that saves its activations, and the backward pass of every layer, giving
// d loss / d parameter for the mean next-token cross-entropy of a batch.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <utility>
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
  bool trainable = true;  // false: frozen (its grad stays zero)
};

// LoRA adapters on the decoder linears (PEFT's): y = x Wᵀ + (alpha / rank) (x Aᵀ) Bᵀ,
// A: (rank, in), B: (out, rank). targets: q, k, v, o, gate, up, down.
struct LoraOptions {
  int64_t rank = 8;
  float alpha = 16.0f;
  std::vector<std::string> targets{"q", "k", "v", "o", "gate", "up", "down"};
};

// Fake quantization of every decoder linear (QAT): asymmetric `bits`-bit groups of `group`
// input columns, w_q = scale (clamp(round(w / scale) + zero, 0, 2^bits − 1) − zero); in the
// backward, round passes the gradient straight through and the clamp keeps its own.
// scale (trainable, "scale.MODULE") and zero ("zero.MODULE", fixed) are (rows, cols / group),
// set from each group's min/max (the range including 0): scale = max((max − min) /
// (2^bits − 1), 1e-8), zero = clamp(round(−min / scale), 0, 2^bits − 1).
struct FakeQuantOptions {
  int bits = 4;
  int64_t group = 128;
};

// PyTorch's AdamW (decoupled weight decay): p ← p (1 − lr·wd), then
// p ← p − lr / (1 − β1^t) · m / (sqrt(v) / sqrt(1 − β2^t) + eps).
struct AdamWOptions {
  float lr = 1e-3f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, weight_decay = 0.01f;
};
class AdamW {
 public:
  explicit AdamW(const AdamWOptions& o) : o_(o) {}
  // One step over the trainable tensors (state made on the first call, by position).
  void step(std::vector<TrainTensor>& params);
  int64_t steps() const { return t_; }
  void set_options(const AdamWOptions& o) { o_ = o; }  // a schedule changes lr between steps
  // The moments of params[k] (empty before its first step), for checkpoints.
  std::vector<float>& m(size_t k) { return grow(k).first; }
  std::vector<float>& v(size_t k) { return grow(k).second; }
  void set_steps(int64_t t) { t_ = t; }

 private:
  std::pair<std::vector<float>&, std::vector<float>&> grow(size_t k) {
    if (m_.size() <= k) {
      m_.resize(k + 1);
      v_.resize(k + 1);
    }
    return {m_[k], v_[k]};
  }
  AdamWOptions o_;
  int64_t t_ = 0;
  std::vector<std::vector<float>> m_, v_;
};

class TrainModel {
 public:
  // Every weight decoded to f32. An Error naming the model for what the training engine
  // does not run yet: biases, q/k norms, RoPE scaling, a sliding window.
  // frozen_base: QLoRA's base, each decoder linear rounded to this format straight from
  // the file, one at a time (freeze_base), so no f32 copy of the model is ever whole.
  explicit TrainModel(const Model& model, const Format* frozen_base = nullptr);
  ~TrainModel();
  TrainModel(const TrainModel&) = delete;
  TrainModel& operator=(const TrainModel&) = delete;

  // tokens: (B, T + 1) row-major; inputs [:, :T], targets [:, 1:]. Returns the mean
  // cross-entropy over the B·T targets and ADDS its gradient into every grad.
  float forward_backward(std::span<const int32_t> tokens, int64_t B, int64_t T);
  // The loss alone.
  float loss(std::span<const int32_t> tokens, int64_t B, int64_t T);
  void zero_grad();
  // Adds LoRA adapters (lora_A.MODULE, lora_B.MODULE; MODULE as PEFT names it:
  // model.layers.N.self_attn.q_proj), set by `init` (null: PEFT's, A Kaiming-uniform and B
  // zero), and freezes every other parameter.
  void add_lora(const LoraOptions& o, const std::function<void(TrainTensor& a, TrainTensor& b)>& init = {});
  // Fake-quantizes every decoder linear from now on (scale.MODULE and zero.MODULE added).
  void add_fake_quant(const FakeQuantOptions& o);
  // QLoRA's frozen base: every decoder linear rounded to `format` and kept in its bytes
  // (the forward runs the engine's kernels on them, the backward decodes panels of rows);
  // their f32 values are dropped. An Error naming the tensor when its rows do not fit.
  void freeze_base(const Format& format);

  std::vector<TrainTensor>& params() { return params_; }
  TrainTensor& param(const std::string& name);  // Error naming it when absent
  const ModelConfig& config() const { return config_; }
  const LoraOptions& lora() const { return lora_; }  // with add_lora

 private:
  struct Activations;
  float run(std::span<const int32_t> tokens, int64_t B, int64_t T, bool backward);
  struct LinearExtras;  // LoRA and fake quantization of one decoder linear
  // out: (N, rows) of the linear on x: (N, cols); the backward adds into dx and the grads.
  void linear_forward(LinearExtras& e, const float* x, int64_t N, float* out);
  void linear_backward(LinearExtras& e, const float* x, int64_t N, const float* dout, float* dx);
  // Appends two tensors (gradients for the trainable ones); their indices.
  std::pair<int64_t, int64_t> push_pair(TrainTensor a, TrainTensor b);
  // t rounded to `format` as a Weight; t's values and gradient dropped, t frozen.
  std::shared_ptr<const Weight> frozen_copy(TrainTensor& t, const Format& format);
  ModelConfig config_;
  std::vector<TrainTensor> params_;
  std::string source_;
  std::vector<LinearExtras> extras_;  // per decoder linear, layer by layer in q,k,v,o,gate,up,down order
  std::vector<std::shared_ptr<const Weight>> pending_frozen_;  // the constructor's frozen linears, in that order
  LoraOptions lora_;
  FakeQuantOptions fq_;
};

}  // namespace lowbit

namespace lowbit {

// A training run over token windows (trainer.cpp): each step averages grad_accum batches
// of `batch` windows of seq_len + 1 tokens drawn at seeded random offsets, clips the
// gradients' global norm, and takes one AdamW step at a learning rate warmed up linearly
// over `warmup` steps and then cosine-decayed to lr · min_lr_ratio.
struct TrainOptions {
  int64_t steps = 200, batch = 4, seq_len = 128, grad_accum = 1, warmup = 20;
  AdamWOptions adamw{.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.0f};
  float min_lr_ratio = 0.1f;
  float clip = 1.0f;  // max global gradient norm; 0: no clipping
  uint64_t seed = 0;
  std::string source;  // the data's file, for messages
  // After each step: (step done, steps, loss, lr).
  std::function<void(int64_t, int64_t, float, float)> progress;
  // Checkpoints: every save_every steps (and after the last) the trainable tensors, AdamW's
  // moments, the step and the window generator's state go to checkpoint (a folder,
  // replaced atomically: a kill leaves the previous one whole). resume: continue from it;
  // the run then ends as if it had never stopped, bit for bit.
  std::string checkpoint;
  int64_t save_every = 0;
  bool resume = false;
};
struct TrainReport {
  std::vector<float> losses;  // per step run (mean over its accumulated batches)
  int64_t resumed_from = 0;   // the checkpoint's step (0: from the start)
  double seconds = 0, tokens_per_second = 0;
};
// The learning rate of step s (0-based).
float scheduled_lr(const TrainOptions& o, int64_t step);
// Errors name o.source: fewer tokens than one window; a NaN or infinite loss stops the run
// naming the step (the parameters are those before it).
TrainReport train_steps(TrainModel& model, std::span<const int32_t> tokens, const TrainOptions& o);

}  // namespace lowbit
