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
struct RopeTable;
}

namespace lowbit {

// One parameter by its Hugging Face name (model.embed_tokens.weight,
// model.layers.N.self_attn.q_proj.weight, ..., lm_head.weight); q/k rows in Hugging Face's
// rotate-half order whatever the file's. A norm is (1, C).
struct TrainTensor {
  std::string name;
  int64_t rows = 0, cols = 0;
  std::vector<float> value, grad;  // grad: (rows, cols) once a backward has run, for a trainable tensor
  bool trainable = true;  // false: frozen (its grad stays zero)
  float lr_mult = 1.0f;   // the optimizer's learning rate times this (parameter groups)
};

// LoRA adapters on the decoder linears (PEFT's): y = x Wᵀ + (alpha / rank) (x Aᵀ) Bᵀ,
// A: (rank, in), B: (out, rank). targets: q, k, v, o, gate, up, down.
struct LoraOptions {
  int64_t rank = 8;
  float alpha = 16.0f;
  std::vector<std::string> targets{"q", "k", "v", "o", "gate", "up", "down"};
};

// Fake quantization of the decoder linears (QAT): asymmetric `bits`-bit groups of `group`
// input columns, w_q = scale (clamp(round(w / scale) + zero, 0, 2^bits − 1) − zero); in the
// backward, round passes the gradient straight through and the clamp keeps its own.
// scale (trainable, "scale.MODULE") and zero ("zero.MODULE", fixed unless train_zero) are
// (rows, cols / group), set from each group's min/max (the range including 0): scale =
// max((max − min) / (2^bits − 1), 1e-8), zero = clamp(round(−min / scale), 0, 2^bits − 1).
// sym: the range ±max |w| and zero 2^(bits−1), fixed (GPTQ's symmetric grid).
// format: instead, a table format's own quantizer (nf4, q4_0, k-quants, ...): the forward
// uses its round trip, the weight's gradient passes straight through, and no scale trains.
struct FakeQuantOptions {
  int bits = 4;
  int64_t group = 128;        // 0: one group per row
  bool sym = false;
  bool train_zero = false;    // zero points train too (EfficientQAT), rounded straight through
  bool fp16_scales = false;   // the forward uses each scale as fp16 holds it (as the file will)
  const Format* format = nullptr;
  int64_t layer = -1;         // only this block's linears (-1: every block)
};
// How fake quantization rounds into `f`: an intN group format (int3_g64_asym, ...) as its
// affine grid with fp16 scales; any other format with a block quantizer through that
// quantizer. An Error naming f when it has none (float formats).
FakeQuantOptions fake_quant_for(const Format& f);

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
  // cross-entropy over the B·T targets and ADDS its gradient into every grad. With teacher
  // logits: (B·T, V) of the inputs (overwritten), the loss is instead the mean
  // KL(teacher ‖ model) of the next-token distributions (distillation).
  float forward_backward(std::span<const int32_t> tokens, int64_t B, int64_t T, std::span<float> teacher = {});
  // The loss alone.
  float loss(std::span<const int32_t> tokens, int64_t B, int64_t T, std::span<float> teacher = {});
  void zero_grad();
  // Adds LoRA adapters (lora_A.MODULE, lora_B.MODULE; MODULE as PEFT names it:
  // model.layers.N.self_attn.q_proj), set by `init` (null: PEFT's, A Kaiming-uniform and B
  // zero), and freezes every other parameter.
  void add_lora(const LoraOptions& o, const std::function<void(TrainTensor& a, TrainTensor& b)>& init = {});
  // Fake-quantizes the decoder linears from now on (scale.MODULE and zero.MODULE added for
  // an affine grid).
  void add_fake_quant(const FakeQuantOptions& o);
  // EfficientQAT's E2E-QP: each fake-quantized weight becomes its integer codes, frozen;
  // only the scales (and what else is trainable) train from now on.
  void freeze_codes();
  // Which tensors train from now on (a gradient kept for each); codes never do.
  void set_trainable(const std::function<bool(const TrainTensor&)>& trainable);
  // Activation checkpointing: the forward keeps only each block's input and the backward
  // runs the block's forward again (one block's activations instead of all, for one more
  // forward of each block).
  void set_checkpointing(bool on) { checkpointing_ = on; }
  // One decoder block alone (Block-AP): x: (B·T, C) its input → out: (B·T, C).
  void block_output(int64_t layer, std::span<const float> x, int64_t B, int64_t T, float* out);
  // Mean squared error of block `layer`'s output on x against target: (B·T, C); its
  // gradient is ADDED into the block's trainable grads. The loss.
  float block_mse(int64_t layer, std::span<const float> x, std::span<const float> target, int64_t B, int64_t T);
  // The decoder linears as trained: a fake-quantized one in its format (an intN grid packed
  // from its codes, fp16 scales and zeros; else the format's quantizer), any other as f32,
  // with every other trained tensor, written over `m`'s weights; m's q/k rows become
  // rotate-half (config.rope_style says so; writers reorder as their format wants).
  void export_to(Model& m) const;
  // QLoRA's frozen base: every decoder linear rounded to `format` and kept in its bytes
  // (the forward runs the engine's kernels on them, the backward decodes panels of rows);
  // their f32 values are dropped. An Error naming the tensor when its rows do not fit.
  void freeze_base(const Format& format);

  std::vector<TrainTensor>& params() { return params_; }
  TrainTensor& param(const std::string& name);  // Error naming it when absent
  const ModelConfig& config() const { return config_; }
  const LoraOptions& lora() const { return lora_; }  // with add_lora

 private:
  struct BlockCache;  // one block's activations, saved by its forward for its backward
  float run(std::span<const int32_t> tokens, int64_t B, int64_t T, bool backward, std::span<float> teacher);
  struct LinearExtras;  // LoRA and fake quantization of one decoder linear
  // out: (N, rows) of the linear on x: (N, cols); the backward adds into dx and the grads.
  void linear_forward(LinearExtras& e, const float* x, int64_t N, float* out);
  void linear_backward(LinearExtras& e, const float* x, int64_t N, const float* dout, float* dx);
  void check_batch(std::span<const int32_t> tokens, int64_t B, int64_t T) const;
  // A zeroed gradient for every trainable tensor without one (made lazily: a model whose
  // training is block by block never holds every gradient at once).
  void ensure_grads();
  // x_out = block l(x_in), its activations in s; the backward turns dx (d x_out) into d x_in.
  void block_forward(int64_t l, const float* x_in, int64_t B, int64_t T, const RopeTable& rope, BlockCache& s, float* x_out);
  void block_backward(int64_t l, BlockCache& s, int64_t B, int64_t T, const RopeTable& rope, float* dx);
  TrainTensor& attn_norm(int64_t l) { return params_[1 + 9 * static_cast<size_t>(l)]; }
  TrainTensor& ffn_norm(int64_t l) { return params_[6 + 9 * static_cast<size_t>(l)]; }
  float scale_of(const LinearExtras& e, int64_t g) const;
  float zero_of(const LinearExtras& e, float z) const;
  float code(const LinearExtras& e, int64_t r, int64_t c) const;
  static constexpr float kMinFp16Scale = 1.2e-7f;  // fp16's second subnormal: a scale never rounds to 0
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
  bool checkpointing_ = false;
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
  // Distillation: when set, each batch's loss is KL(teacher ‖ model), the teacher's logits:
  // (B·T, V) written by teacher(inputs: (B, T), B, T, logits) (lowbit qat: the float model).
  std::function<void(std::span<const int32_t>, int64_t, int64_t, float*)> teacher;
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
