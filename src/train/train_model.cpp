// TrainModel (lowbit/train.h): the Llama block of the engine, in float32 over a batch,
// with every activation the backward needs kept per layer. Shapes: N = B·T rows, C = dim,
// Q = n_heads·head_dim, KV = n_kv_heads·head_dim, F = hidden_dim, V = vocab.
#include "lowbit/train.h"

#include <algorithm>
#include <cstring>

#include "io/gguf_llama.h"
#include "io/hf_names.h"
#include "lowbit/error.h"
#include "model/layers.h"
#include "train/train_layers.h"

namespace lowbit {
namespace {

// Index of each parameter of a block in params_.
struct BlockParams {
  size_t attn_norm, q, k, v, o, ffn_norm, gate, up, down;
};

}  // namespace

struct TrainModel::Activations {
  struct Layer {
    std::vector<float> x, h1, rstd1, q, k, v, probs, att, x2, h2, rstd2, gate, up, act;
  };
  std::vector<Layer> layers;
  std::vector<float> x_final, hf, rstdf, probs;
};

TrainModel::TrainModel(const Model& m) : config_(m.config), source_(m.source) {
  const ModelConfig& c = m.config;
  if (c.attention_bias != BiasSet::kNone || c.qk_norm || c.rope_scaling.type != RopeScalingType::kNone || c.sliding_window > 0) {
    throw Error("the training engine runs plain Llama blocks (no biases, q/k norms, RoPE scaling or sliding window yet)", {.file = m.source});
  }
  config_.rope_style = RopeStyle::kRotateHalf;
  auto add = [&](const Weight& w) {
    TrainTensor t{hf_tensor_name(w.name), w.rows, w.cols, w.to_f32(), {}};
    if (const auto order = qk_reorder(c, w, RopeStyle::kRotateHalf); !order.empty()) {
      std::vector<float> v(t.value.size());
      for (int64_t r = 0; r < w.rows; ++r) std::copy_n(t.value.data() + order[r] * w.cols, w.cols, v.data() + r * w.cols);
      t.value = std::move(v);
    }
    t.grad.assign(t.value.size(), 0.0f);
    params_.push_back(std::move(t));
  };
  add(m.token_embd);
  for (const LayerWeights& l : m.layers) {
    for (const Weight* w : {&l.attn_norm, &l.attn_q, &l.attn_k, &l.attn_v, &l.attn_output, &l.ffn_norm, &l.ffn_gate, &l.ffn_up, &l.ffn_down}) add(*w);
  }
  add(m.output_norm);
  if (!c.tied_output) add(m.output);
}

TrainModel::~TrainModel() = default;

TrainTensor& TrainModel::param(const std::string& name) {
  for (TrainTensor& t : params_) {
    if (t.name == name) return t;
  }
  throw Error("no such parameter", {.file = source_, .tensor = name});
}

void TrainModel::zero_grad() {
  for (TrainTensor& t : params_) std::fill(t.grad.begin(), t.grad.end(), 0.0f);
}

float TrainModel::forward_backward(std::span<const int32_t> tokens, int64_t B, int64_t T) { return run(tokens, B, T, true); }
float TrainModel::loss(std::span<const int32_t> tokens, int64_t B, int64_t T) { return run(tokens, B, T, false); }

float TrainModel::run(std::span<const int32_t> tokens, int64_t B, int64_t T, bool backward) {
  using namespace train;
  const ModelConfig& c = config_;
  const int64_t N = B * T, C = c.dim, H = c.n_heads, KVH = c.n_kv_heads, hd = c.head_dim(), Q = H * hd, KV = KVH * hd,
                F = c.hidden_dim, V = c.vocab_size, L = c.n_layers;
  if (static_cast<int64_t>(tokens.size()) != B * (T + 1) || T < 1 || T > c.context_length) {
    throw Error("training batch must hold B x (T + 1) tokens with T within the model's context",
                {.file = source_, .value = std::to_string(tokens.size()) + " tokens for B " + std::to_string(B) + ", T " + std::to_string(T)});
  }
  std::vector<int32_t> in(static_cast<size_t>(N)), target(static_cast<size_t>(N));
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t t = 0; t < T; ++t) {
      in[b * T + t] = tokens[b * (T + 1) + t];
      target[b * T + t] = tokens[b * (T + 1) + t + 1];
    }
  }
  for (int32_t id : tokens) {
    if (id < 0 || id >= V) throw Error("token id outside the vocabulary", {.file = source_, .value = std::to_string(id)});
  }
  const RopeTable rope_table(T, hd, c.rope_theta);
  const TrainTensor& wte = params_[0];
  std::vector<BlockParams> bp(static_cast<size_t>(L));
  for (int64_t l = 0; l < L; ++l) {
    const size_t base = 1 + 9 * static_cast<size_t>(l);
    bp[l] = {base, base + 1, base + 2, base + 3, base + 4, base + 5, base + 6, base + 7, base + 8};
  }
  TrainTensor& norm_f = params_[1 + 9 * static_cast<size_t>(L)];
  TrainTensor& head = c.tied_output ? params_[0] : params_[2 + 9 * static_cast<size_t>(L)];

  Activations a;
  a.layers.resize(static_cast<size_t>(L));
  std::vector<float> x(static_cast<size_t>(N * C));
  embedding_forward(x.data(), in.data(), wte.value.data(), N, C);
  for (int64_t l = 0; l < L; ++l) {
    Activations::Layer& s = a.layers[l];
    const BlockParams& p = bp[l];
    s.x = x;
    s.h1.resize(N * C);
    s.rstd1.resize(N);
    rmsnorm_forward(s.h1.data(), s.rstd1.data(), s.x.data(), params_[p.attn_norm].value.data(), N, C, c.norm_eps);
    s.q.resize(N * Q);
    s.k.resize(N * KV);
    s.v.resize(N * KV);
    matmul_forward(s.q.data(), s.h1.data(), params_[p.q].value.data(), N, C, Q);
    matmul_forward(s.k.data(), s.h1.data(), params_[p.k].value.data(), N, C, KV);
    matmul_forward(s.v.data(), s.h1.data(), params_[p.v].value.data(), N, C, KV);
    rope_forward(s.q.data(), B, T, H, hd, RopeStyle::kRotateHalf, rope_table.cos.data(), rope_table.sin.data());
    rope_forward(s.k.data(), B, T, KVH, hd, RopeStyle::kRotateHalf, rope_table.cos.data(), rope_table.sin.data());
    s.probs.resize(B * H * T * T);
    s.att.resize(N * Q);
    attention_forward(s.att.data(), s.probs.data(), s.q.data(), s.k.data(), s.v.data(), B, T, H, KVH, hd);
    std::vector<float> o(static_cast<size_t>(N * C));
    matmul_forward(o.data(), s.att.data(), params_[p.o].value.data(), N, Q, C);
    for (int64_t i = 0; i < N * C; ++i) x[i] += o[i];
    s.x2 = x;
    s.h2.resize(N * C);
    s.rstd2.resize(N);
    rmsnorm_forward(s.h2.data(), s.rstd2.data(), s.x2.data(), params_[p.ffn_norm].value.data(), N, C, c.norm_eps);
    s.gate.resize(N * F);
    s.up.resize(N * F);
    s.act.resize(N * F);
    matmul_forward(s.gate.data(), s.h2.data(), params_[p.gate].value.data(), N, C, F);
    matmul_forward(s.up.data(), s.h2.data(), params_[p.up].value.data(), N, C, F);
    swiglu_forward(s.act.data(), s.gate.data(), s.up.data(), N * F);
    matmul_forward(o.data(), s.act.data(), params_[p.down].value.data(), N, F, C);
    for (int64_t i = 0; i < N * C; ++i) x[i] += o[i];
  }
  a.x_final = x;
  a.hf.resize(N * C);
  a.rstdf.resize(N);
  rmsnorm_forward(a.hf.data(), a.rstdf.data(), a.x_final.data(), norm_f.value.data(), N, C, c.norm_eps);
  std::vector<float> logits(static_cast<size_t>(N * V));
  matmul_forward(logits.data(), a.hf.data(), head.value.data(), N, C, V);
  a.probs.resize(N * V);
  const float loss = crossentropy_forward(a.probs.data(), logits.data(), target.data(), N, V);
  if (!backward) return loss;

  // Backward, in reverse; dx: the gradient of the residual stream.
  std::vector<float>& dlogits = logits;
  crossentropy_backward(dlogits.data(), a.probs.data(), target.data(), N, V, 1.0f);
  std::vector<float> dhf(static_cast<size_t>(N * C), 0.0f), dx(static_cast<size_t>(N * C), 0.0f);
  matmul_backward(dhf.data(), head.grad.data(), dlogits.data(), a.hf.data(), head.value.data(), N, C, V);
  rmsnorm_backward(dx.data(), norm_f.grad.data(), dhf.data(), a.x_final.data(), norm_f.value.data(), a.rstdf.data(), N, C);
  std::vector<float> dh(static_cast<size_t>(N * C)), dact(static_cast<size_t>(N * F)), dgate(static_cast<size_t>(N * F)),
      dup(static_cast<size_t>(N * F)), datt(static_cast<size_t>(N * Q)), dq(static_cast<size_t>(N * Q)), dk(static_cast<size_t>(N * KV)),
      dv(static_cast<size_t>(N * KV));
  for (int64_t l = L - 1; l >= 0; --l) {
    Activations::Layer& s = a.layers[l];
    const BlockParams& p = bp[l];
    // x = x2 + down(swiglu(gate(h2), up(h2))), h2 = rmsnorm(x2)
    std::fill(dact.begin(), dact.end(), 0.0f);
    matmul_backward(dact.data(), params_[p.down].grad.data(), dx.data(), s.act.data(), params_[p.down].value.data(), N, F, C);
    std::fill(dgate.begin(), dgate.end(), 0.0f);
    std::fill(dup.begin(), dup.end(), 0.0f);
    swiglu_backward(dgate.data(), dup.data(), dact.data(), s.gate.data(), s.up.data(), N * F);
    std::fill(dh.begin(), dh.end(), 0.0f);
    matmul_backward(dh.data(), params_[p.gate].grad.data(), dgate.data(), s.h2.data(), params_[p.gate].value.data(), N, C, F);
    matmul_backward(dh.data(), params_[p.up].grad.data(), dup.data(), s.h2.data(), params_[p.up].value.data(), N, C, F);
    rmsnorm_backward(dx.data(), params_[p.ffn_norm].grad.data(), dh.data(), s.x2.data(), params_[p.ffn_norm].value.data(), s.rstd2.data(), N, C);
    // x2 = x + o(attention(rope(q(h1)), rope(k(h1)), v(h1))), h1 = rmsnorm(x)
    std::fill(datt.begin(), datt.end(), 0.0f);
    matmul_backward(datt.data(), params_[p.o].grad.data(), dx.data(), s.att.data(), params_[p.o].value.data(), N, Q, C);
    std::fill(dq.begin(), dq.end(), 0.0f);
    std::fill(dk.begin(), dk.end(), 0.0f);
    std::fill(dv.begin(), dv.end(), 0.0f);
    attention_backward(dq.data(), dk.data(), dv.data(), datt.data(), s.probs.data(), s.q.data(), s.k.data(), s.v.data(), B, T, H, KVH, hd);
    rope_backward(dq.data(), B, T, H, hd, RopeStyle::kRotateHalf, rope_table.cos.data(), rope_table.sin.data());
    rope_backward(dk.data(), B, T, KVH, hd, RopeStyle::kRotateHalf, rope_table.cos.data(), rope_table.sin.data());
    std::fill(dh.begin(), dh.end(), 0.0f);
    matmul_backward(dh.data(), params_[p.q].grad.data(), dq.data(), s.h1.data(), params_[p.q].value.data(), N, C, Q);
    matmul_backward(dh.data(), params_[p.k].grad.data(), dk.data(), s.h1.data(), params_[p.k].value.data(), N, C, KV);
    matmul_backward(dh.data(), params_[p.v].grad.data(), dv.data(), s.h1.data(), params_[p.v].value.data(), N, C, KV);
    rmsnorm_backward(dx.data(), params_[p.attn_norm].grad.data(), dh.data(), s.x.data(), params_[p.attn_norm].value.data(), s.rstd1.data(), N, C);
    s = {};  // this layer's activations are no longer needed
  }
  embedding_backward(params_[0].grad.data(), dx.data(), in.data(), N, C);
  return loss;
}

}  // namespace lowbit
