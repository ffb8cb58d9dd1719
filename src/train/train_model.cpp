// TrainModel (lowbit/train.h): the Llama block of the engine, in float32 over a batch,
// with every activation the backward needs kept per layer. Shapes: N = B·T rows, C = dim,
// Q = n_heads·head_dim, KV = n_kv_heads·head_dim, F = hidden_dim, V = vocab.
#include "lowbit/train.h"

#include <algorithm>
#include <cstring>

#include "io/gguf_llama.h"
#include "io/hf_names.h"
#include "lowbit/engine.h"
#include "lowbit/mapped_file.h"
#include "lowbit/error.h"
#include "lowbit/float_convert.h"
#include "model/layers.h"
#include "train/train_layers.h"
#include "train/train_model_parts.h"
#include "core/sgemm_tiles.h"


#include <cmath>
#include <random>
#include <tuple>

namespace lowbit {

TrainModel::TrainModel(const Model& m, const Format* frozen_base) : config_(m.config), source_(m.source) {
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
    params_.push_back(std::move(t));  // gradients come with the first backward (ensure_grads)
  };
  add(m.token_embd);
  for (const LayerWeights& l : m.layers) {
    for (const Weight* w : {&l.attn_norm, &l.attn_q, &l.attn_k, &l.attn_v, &l.attn_output, &l.ffn_norm, &l.ffn_gate, &l.ffn_up, &l.ffn_down}) {
      add(*w);
      if (frozen_base != nullptr && w->rows > 1) pending_frozen_.push_back(frozen_copy(params_.back(), *frozen_base));  // one f32 linear at a time
      if (!w->owned) release_pages(w->data);
    }
  }
  add(m.output_norm);
  if (!c.tied_output) add(m.output);
  for (int64_t l = 0; l < c.n_layers; ++l) {
    for (size_t k : {1, 2, 3, 4, 6, 7, 8}) extras_.push_back({.weight = 1 + 9 * static_cast<size_t>(l) + k});
  }
  for (size_t i = 0; i < pending_frozen_.size(); ++i) extras_[i].frozen = std::move(pending_frozen_[i]);
  pending_frozen_.clear();
}

// The fake quantizer of one linear: its scale (clamped above 0; rounded to fp16 when the
// file will hold it so), zero point (rounded, in range) and element (r, c)'s code.
float TrainModel::scale_of(const LinearExtras& e, int64_t g) const {
  const float s = params_[e.scale].value[g];
  return e.fq.fp16_scales ? fp16_to_fp32(fp32_to_fp16(std::max(s, kMinFp16Scale))) : s;
}
float TrainModel::zero_of(const LinearExtras& e, float z) const {
  return std::clamp(std::nearbyint(z), 0.0f, static_cast<float>((1 << e.fq.bits) - 1));
}
float TrainModel::code(const LinearExtras& e, int64_t r, int64_t c) const {
  const TrainTensor& w = params_[e.weight];
  const float v = w.value[r * w.cols + c];
  if (e.codes) return v;
  const int64_t g = r * params_[e.scale].cols + c / e.fq.group;
  return std::clamp(std::nearbyint(v / scale_of(e, g)) + zero_of(e, params_[e.zero].value[g]), 0.0f, static_cast<float>((1 << e.fq.bits) - 1));
}

namespace {

// "model.layers.0.self_attn.q_proj.weight" → "model.layers.0.self_attn.q_proj"
std::string module_of(const std::string& weight) { return weight.substr(0, weight.size() - 7); }

const char* const kTargets[] = {"q", "k", "v", "o", "gate", "up", "down"};  // extras_ order within a layer

}  // namespace

std::pair<int64_t, int64_t> TrainModel::push_pair(TrainTensor a, TrainTensor b) {
  const int64_t first = static_cast<int64_t>(params_.size());
  for (TrainTensor* t : {&a, &b}) {
    if (t->trainable) t->grad.assign(t->value.size(), 0.0f);
    params_.push_back(std::move(*t));
  }
  return {first, first + 1};
}

std::shared_ptr<const Weight> TrainModel::frozen_copy(TrainTensor& t, const Format& format) {
  if (!format_fits(format, t.cols)) throw Error("the base format does not fit the linear's rows", {.file = source_, .tensor = t.name, .value = std::string(format.name)});
  auto bytes = std::make_shared<const std::vector<uint8_t>>(quantize_tensor(format, t.value, t.rows, t.cols));
  t.trainable = false;
  std::vector<float>().swap(t.value);
  std::vector<float>().swap(t.grad);
  return std::make_shared<const Weight>(Weight{t.name, &format, t.rows, t.cols, *bytes, bytes});
}

void TrainModel::add_lora(const LoraOptions& o, const std::function<void(TrainTensor& a, TrainTensor& b)>& init) {
  if (o.rank < 1) throw Error("LoRA rank must be at least 1", {.file = source_, .value = std::to_string(o.rank)});
  for (const std::string& t : o.targets) {
    if (std::find(std::begin(kTargets), std::end(kTargets), t) == std::end(kTargets)) {
      throw Error("unknown LoRA target (q, k, v, o, gate, up, down)", {.file = source_, .value = t});
    }
  }
  for (TrainTensor& t : params_) {
    t.trainable = false;
    std::vector<float>().swap(t.grad);  // frozen: no gradient kept
  }
  std::mt19937 rng(0);
  for (size_t i = 0; i < extras_.size(); ++i) {
    LinearExtras& e = extras_[i];
    if (std::find(o.targets.begin(), o.targets.end(), kTargets[i % 7]) == o.targets.end()) continue;
    const TrainTensor& w = params_[e.weight];
    const std::string module = module_of(w.name);
    TrainTensor a{"lora_A." + module, o.rank, w.cols, std::vector<float>(static_cast<size_t>(o.rank * w.cols)), {}};
    TrainTensor b{"lora_B." + module, w.rows, o.rank, std::vector<float>(static_cast<size_t>(w.rows * o.rank), 0.0f), {}};
    if (init) {
      init(a, b);
    } else {  // PEFT: A Kaiming-uniform (a = sqrt 5: bound 1 / sqrt(in)), B zero
      std::uniform_real_distribution<float> u(-1.0f / std::sqrt(static_cast<float>(w.cols)), 1.0f / std::sqrt(static_cast<float>(w.cols)));
      for (float& v : a.value) v = u(rng);
    }
    std::tie(e.lora_a, e.lora_b) = push_pair(std::move(a), std::move(b));
  }
  lora_ = o;
}

void TrainModel::add_fake_quant(const FakeQuantOptions& o) {
  const int maxq = (1 << o.bits) - 1;
  for (size_t i = 0; i < extras_.size(); ++i) {
    LinearExtras& e = extras_[i];
    if (o.layer >= 0 && static_cast<int64_t>(i / 7) != o.layer) continue;
    const TrainTensor& w = params_[e.weight];
    if (w.value.empty()) throw Error("a frozen linear cannot be fake-quantized", {.file = source_, .tensor = w.name});
    e.fq = o;
    if (o.format != nullptr) {  // the format's own quantizer: no scales to train
      if (!format_fits(*o.format, w.cols)) throw Error("the format does not fit the linear's rows", {.file = source_, .tensor = w.name, .value = std::string(o.format->name)});
      continue;
    }
    const int64_t group = o.group == 0 ? w.cols : o.group;
    if (w.cols % group != 0) throw Error("fake-quantization groups must divide the rows", {.file = source_, .tensor = w.name, .value = std::to_string(group)});
    e.fq.group = group;
    const int64_t groups = w.cols / group;
    const std::string module = module_of(w.name);
    TrainTensor scale{"scale." + module, w.rows, groups, std::vector<float>(static_cast<size_t>(w.rows * groups)), {}};
    TrainTensor zero{"zero." + module, w.rows, groups, std::vector<float>(static_cast<size_t>(w.rows * groups)), {}, o.train_zero};
    for (int64_t r = 0; r < w.rows; ++r) {
      for (int64_t g = 0; g < groups; ++g) {
        const float* v = w.value.data() + r * w.cols + g * group;
        float mn = std::min(0.0f, *std::min_element(v, v + group)), mx = std::max(0.0f, *std::max_element(v, v + group));
        if (o.sym) {  // GPTQ's symmetric grid: the range ±max |w|, zero in the middle
          mx = std::max(-mn, mx);
          mn = -mx;
        }
        const float sc = std::max((mx - mn) / static_cast<float>(maxq), 1e-8f);
        scale.value[r * groups + g] = sc;
        zero.value[r * groups + g] = o.sym ? static_cast<float>((maxq + 1) / 2) : std::clamp(std::nearbyint(-mn / sc), 0.0f, static_cast<float>(maxq));
      }
    }
    std::tie(e.scale, e.zero) = push_pair(std::move(scale), std::move(zero));
  }
}

void TrainModel::freeze_codes() {
  for (LinearExtras& e : extras_) {
    if (e.scale < 0 || e.codes) continue;
    TrainTensor &w = params_[e.weight], &zp = params_[e.zero];
    for (int64_t r = 0; r < w.rows; ++r) {
      for (int64_t c = 0; c < w.cols; ++c) w.value[r * w.cols + c] = code(e, r, c);
    }
    for (float& z : zp.value) z = zero_of(e, z);
    e.codes = true;
    for (TrainTensor* t : {&w, &zp}) {
      t->trainable = false;
      std::vector<float>().swap(t->grad);
    }
  }
}

void TrainModel::set_trainable(const std::function<bool(const TrainTensor&)>& trainable) {
  for (TrainTensor& t : params_) {
    const bool on = trainable(t) && !t.value.empty();
    const bool code_tensor = std::any_of(extras_.begin(), extras_.end(), [&](const LinearExtras& e) { return e.codes && &params_[e.weight] == &t; });
    t.trainable = on && !code_tensor;
    if (t.trainable) {
      t.grad.resize(t.value.size(), 0.0f);
    } else {
      std::vector<float>().swap(t.grad);
    }
  }
}

void TrainModel::freeze_base(const Format& format) {
  for (LinearExtras& e : extras_) {
    TrainTensor& w = params_[e.weight];
    if (w.value.empty()) continue;  // frozen already
    if (e.scale >= 0) throw Error("a fake-quantized linear cannot be frozen into a format", {.file = source_, .tensor = w.name});
    e.frozen = frozen_copy(w, format);
  }
}

// ---- one decoder linear: its weight (fake-quantized or not) plus its LoRA ----

void TrainModel::linear_forward(LinearExtras& e, const float* x, int64_t N, float* out) {
  const TrainTensor& w = params_[e.weight];
  const float* weight = w.value.data();
  if (e.frozen) {
    matmul(*e.frozen, x, N, out);
    weight = nullptr;
  } else if (e.fq.format != nullptr) {  // the format's round trip
    e.w_eff = dequantize_tensor(*e.fq.format, quantize_tensor(*e.fq.format, w.value, w.rows, w.cols), w.rows, w.cols);
    weight = e.w_eff.data();
  } else if (e.scale >= 0) {
    const TrainTensor& sc = params_[e.scale];
    e.w_eff.resize(w.value.size());
    for (int64_t r = 0; r < w.rows; ++r) {
      for (int64_t c = 0; c < w.cols; ++c) {
        const int64_t g = r * sc.cols + c / e.fq.group;
        e.w_eff[r * w.cols + c] = scale_of(e, g) * (code(e, r, c) - zero_of(e, params_[e.zero].value[g]));
      }
    }
    weight = e.w_eff.data();
  }
  if (weight != nullptr) train::matmul_forward(out, x, weight, N, w.cols, w.rows);
  if (e.lora_a < 0) return;
  const TrainTensor &a = params_[e.lora_a], &b = params_[e.lora_b];
  e.xa.resize(static_cast<size_t>(N * a.rows));
  train::matmul_forward(e.xa.data(), x, a.value.data(), N, w.cols, a.rows);  // (N, r)
  const float s = lora_.alpha / static_cast<float>(lora_.rank);
  sgemm_tiles(false, true, N, w.rows, a.rows, s, e.xa.data(), a.rows, b.value.data(), a.rows, 1.0f, out, w.rows);
}

void TrainModel::linear_backward(LinearExtras& e, const float* x, int64_t N, const float* dout, float* dx) {
  TrainTensor& w = params_[e.weight];
  const float* weight = e.scale >= 0 ? e.w_eff.data() : w.value.data();
  if (e.frozen) {  // dx += dout · W, W decoded a panel of rows at a time
    constexpr int64_t kPanel = 128;
    std::vector<float> panel(static_cast<size_t>(std::min(kPanel, w.rows) * w.cols));
    for (int64_t r0 = 0; r0 < w.rows; r0 += kPanel) {
      const int64_t n = std::min(kPanel, w.rows - r0);
#pragma omp parallel for schedule(static) if (n * w.cols >= (1 << 16))
      for (int64_t r = 0; r < n; ++r) e.frozen->row_to_f32(r0 + r, panel.data() + r * w.cols);
      sgemm_tiles(false, false, N, w.cols, n, 1.0f, dout + r0, w.rows, panel.data(), w.cols, 1.0f, dx, w.cols);
    }
  } else if (!w.trainable && e.scale < 0) {
    train::matmul_backward(dx, nullptr, dout, x, weight, N, w.cols, w.rows);
  } else if (e.scale < 0) {  // plain, or the format's round trip passing the gradient straight through
    train::matmul_backward(dx, w.grad.data(), dout, x, weight, N, w.cols, w.rows);
  } else {  // through the fake quantizer: d w_q = doutᵀ x, then round straight through
    std::vector<float> dwq(w.value.size(), 0.0f);
    train::matmul_backward(dx, dwq.data(), dout, x, weight, N, w.cols, w.rows);
    TrainTensor &sc = params_[e.scale], &zp = params_[e.zero];
    const float maxq = static_cast<float>((1 << e.fq.bits) - 1);
    for (int64_t r = 0; r < w.rows; ++r) {
      for (int64_t c = 0; c < w.cols; ++c) {
        const int64_t g = r * sc.cols + c / e.fq.group, i = r * w.cols + c;
        const float s = scale_of(e, g), z = zero_of(e, zp.value[g]);
        if (e.codes) {  // w_q = s (q − z), q fixed
          sc.grad[g] += dwq[i] * (w.value[i] - z);
          continue;
        }
        const float u = std::nearbyint(w.value[i] / s) + z;
        const bool inside = u >= 0.0f && u <= maxq;  // the clamp's own gradient
        const float q = std::clamp(u, 0.0f, maxq);
        if (inside && w.trainable) w.grad[i] += dwq[i];
        // w_q = s (q − z), q = clamp(round(w / s) + z): ∂w_q/∂s = (q − z) − [inside] w / s,
        // ∂w_q/∂z = s ([inside] − 1) (z rounded straight through)
        if (sc.trainable) sc.grad[g] += dwq[i] * ((q - z) - (inside ? w.value[i] / s : 0.0f));
        if (zp.trainable && !inside) zp.grad[g] -= dwq[i] * s;
      }
    }
  }
  if (e.lora_a < 0) return;
  TrainTensor &a = params_[e.lora_a], &b = params_[e.lora_b];
  const float s = lora_.alpha / static_cast<float>(lora_.rank);
  const int r = static_cast<int>(a.rows);
  // dB += s doutᵀ (x Aᵀ); d(xAᵀ) = s dout B; dA += d(xAᵀ)ᵀ x; dx += d(xAᵀ) A
  sgemm_tiles(true, false, w.rows, r, N, s, dout, w.rows, e.xa.data(), r, 1.0f, b.grad.data(), r);
  std::vector<float> dxa(static_cast<size_t>(N * r));
  sgemm_tiles(false, false, N, r, w.rows, s, dout, w.rows, b.value.data(), r, 0.0f, dxa.data(), r);
  train::matmul_backward(dx, a.grad.data(), dxa.data(), x, a.value.data(), N, w.cols, r);
}

TrainModel::~TrainModel() = default;

TrainTensor& TrainModel::param(const std::string& name) {
  for (TrainTensor& t : params_) {
    if (t.name == name) return t;
  }
  throw Error("no such parameter", {.file = source_, .tensor = name});
}

void TrainModel::zero_grad() {
  ensure_grads();
  for (TrainTensor& t : params_) std::fill(t.grad.begin(), t.grad.end(), 0.0f);
}

void TrainModel::ensure_grads() {
  for (TrainTensor& t : params_) {
    if (t.trainable && t.grad.size() != t.value.size()) t.grad.assign(t.value.size(), 0.0f);
  }
}

float TrainModel::forward_backward(std::span<const int32_t> tokens, int64_t B, int64_t T, std::span<float> teacher) {
  return run(tokens, B, T, true, teacher);
}
float TrainModel::loss(std::span<const int32_t> tokens, int64_t B, int64_t T, std::span<float> teacher) { return run(tokens, B, T, false, teacher); }

void TrainModel::block_forward(int64_t l, const float* x_in, int64_t B, int64_t T, const RopeTable& rope, BlockCache& s, float* x) {
  using namespace train;
  const ModelConfig& c = config_;
  const int64_t N = B * T, C = c.dim, H = c.n_heads, KVH = c.n_kv_heads, hd = c.head_dim(), Q = H * hd, KV = KVH * hd, F = c.hidden_dim;
  LinearExtras* ex = extras_.data() + 7 * l;
  s.x.assign(x_in, x_in + N * C);
  s.h1.resize(N * C);
  s.rstd1.resize(N);
  rmsnorm_forward(s.h1.data(), s.rstd1.data(), s.x.data(), attn_norm(l).value.data(), N, C, c.norm_eps);
  s.q.resize(N * Q);
  s.k.resize(N * KV);
  s.v.resize(N * KV);
  linear_forward(ex[0], s.h1.data(), N, s.q.data());
  linear_forward(ex[1], s.h1.data(), N, s.k.data());
  linear_forward(ex[2], s.h1.data(), N, s.v.data());
  rope_forward(s.q.data(), B, T, H, hd, RopeStyle::kRotateHalf, rope.cos.data(), rope.sin.data());
  rope_forward(s.k.data(), B, T, KVH, hd, RopeStyle::kRotateHalf, rope.cos.data(), rope.sin.data());
  s.probs.resize(B * H * T * T);
  s.att.resize(N * Q);
  attention_forward(s.att.data(), s.probs.data(), s.q.data(), s.k.data(), s.v.data(), B, T, H, KVH, hd);
  std::vector<float> o(static_cast<size_t>(N * C));
  linear_forward(ex[3], s.att.data(), N, o.data());
  s.x2.resize(N * C);
  for (int64_t i = 0; i < N * C; ++i) s.x2[i] = s.x[i] + o[i];
  s.h2.resize(N * C);
  s.rstd2.resize(N);
  rmsnorm_forward(s.h2.data(), s.rstd2.data(), s.x2.data(), ffn_norm(l).value.data(), N, C, c.norm_eps);
  s.gate.resize(N * F);
  s.up.resize(N * F);
  s.act.resize(N * F);
  linear_forward(ex[4], s.h2.data(), N, s.gate.data());
  linear_forward(ex[5], s.h2.data(), N, s.up.data());
  swiglu_forward(s.act.data(), s.gate.data(), s.up.data(), N * F);
  linear_forward(ex[6], s.act.data(), N, o.data());
  for (int64_t i = 0; i < N * C; ++i) x[i] = s.x2[i] + o[i];
}

void TrainModel::block_backward(int64_t l, BlockCache& s, int64_t B, int64_t T, const RopeTable& rope, float* dx) {
  using namespace train;
  const ModelConfig& c = config_;
  const int64_t N = B * T, C = c.dim, H = c.n_heads, KVH = c.n_kv_heads, hd = c.head_dim(), Q = H * hd, KV = KVH * hd, F = c.hidden_dim;
  LinearExtras* ex = extras_.data() + 7 * l;
  std::vector<float> frozen(static_cast<size_t>(C));  // a frozen norm's gradient, dropped
  auto grad_of = [&](TrainTensor& t) {
    if (t.trainable) return t.grad.data();
    std::fill(frozen.begin(), frozen.end(), 0.0f);
    return frozen.data();
  };
  std::vector<float> dh(static_cast<size_t>(N * C), 0.0f), dact(static_cast<size_t>(N * F), 0.0f), dgate(static_cast<size_t>(N * F), 0.0f),
      dup(static_cast<size_t>(N * F), 0.0f), datt(static_cast<size_t>(N * Q), 0.0f), dq(static_cast<size_t>(N * Q), 0.0f),
      dk(static_cast<size_t>(N * KV), 0.0f), dv(static_cast<size_t>(N * KV), 0.0f);
  // x = x2 + down(swiglu(gate(h2), up(h2))), h2 = rmsnorm(x2)
  linear_backward(ex[6], s.act.data(), N, dx, dact.data());
  swiglu_backward(dgate.data(), dup.data(), dact.data(), s.gate.data(), s.up.data(), N * F);
  linear_backward(ex[4], s.h2.data(), N, dgate.data(), dh.data());
  linear_backward(ex[5], s.h2.data(), N, dup.data(), dh.data());
  rmsnorm_backward(dx, grad_of(ffn_norm(l)), dh.data(), s.x2.data(), ffn_norm(l).value.data(), s.rstd2.data(), N, C);
  // x2 = x + o(attention(rope(q(h1)), rope(k(h1)), v(h1))), h1 = rmsnorm(x)
  linear_backward(ex[3], s.att.data(), N, dx, datt.data());
  attention_backward(dq.data(), dk.data(), dv.data(), datt.data(), s.probs.data(), s.q.data(), s.k.data(), s.v.data(), B, T, H, KVH, hd);
  rope_backward(dq.data(), B, T, H, hd, RopeStyle::kRotateHalf, rope.cos.data(), rope.sin.data());
  rope_backward(dk.data(), B, T, KVH, hd, RopeStyle::kRotateHalf, rope.cos.data(), rope.sin.data());
  std::fill(dh.begin(), dh.end(), 0.0f);
  linear_backward(ex[0], s.h1.data(), N, dq.data(), dh.data());
  linear_backward(ex[1], s.h1.data(), N, dk.data(), dh.data());
  linear_backward(ex[2], s.h1.data(), N, dv.data(), dh.data());
  rmsnorm_backward(dx, grad_of(attn_norm(l)), dh.data(), s.x.data(), attn_norm(l).value.data(), s.rstd1.data(), N, C);
}

void TrainModel::check_batch(std::span<const int32_t> tokens, int64_t B, int64_t T) const {
  if (static_cast<int64_t>(tokens.size()) != B * (T + 1) || T < 1 || T > config_.context_length) {
    throw Error("training batch must hold B x (T + 1) tokens with T within the model's context",
                {.file = source_, .value = std::to_string(tokens.size()) + " tokens for B " + std::to_string(B) + ", T " + std::to_string(T)});
  }
  for (int32_t id : tokens) {
    if (id < 0 || id >= config_.vocab_size) throw Error("token id outside the vocabulary", {.file = source_, .value = std::to_string(id)});
  }
}

float TrainModel::run(std::span<const int32_t> tokens, int64_t B, int64_t T, bool backward, std::span<float> teacher) {
  using namespace train;
  const ModelConfig& c = config_;
  const int64_t N = B * T, C = c.dim, V = c.vocab_size, L = c.n_layers;
  check_batch(tokens, B, T);
  std::vector<int32_t> in(static_cast<size_t>(N)), target(static_cast<size_t>(N));
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t t = 0; t < T; ++t) {
      in[b * T + t] = tokens[b * (T + 1) + t];
      target[b * T + t] = tokens[b * (T + 1) + t + 1];
    }
  }
  const RopeTable rope_table(T, c.head_dim(), c.rope_theta);
  TrainTensor& norm_f = params_[1 + 9 * static_cast<size_t>(L)];
  TrainTensor& head = c.tied_output ? params_[0] : params_[2 + 9 * static_cast<size_t>(L)];

  // Each block's cache; with checkpointing only its input is kept, and the backward runs
  // the block again.
  std::vector<BlockCache> blocks(static_cast<size_t>(L));
  std::vector<float> x(static_cast<size_t>(N * C)), next(static_cast<size_t>(N * C));
  embedding_forward(x.data(), in.data(), params_[0].value.data(), N, C);
  for (int64_t l = 0; l < L; ++l) {
    block_forward(l, x.data(), B, T, rope_table, blocks[l], next.data());
    if (!backward) blocks[l] = {};
    if (backward && checkpointing_) blocks[l] = BlockCache{.x = std::move(blocks[l].x)};
    std::swap(x, next);
  }
  std::vector<float> hf(static_cast<size_t>(N * C)), rstdf(static_cast<size_t>(N));
  rmsnorm_forward(hf.data(), rstdf.data(), x.data(), norm_f.value.data(), N, C, c.norm_eps);
  std::vector<float> logits(static_cast<size_t>(N * V));
  matmul_forward(logits.data(), hf.data(), head.value.data(), N, C, V);
  std::vector<float> probs(static_cast<size_t>(N * V));
  if (!teacher.empty() && static_cast<int64_t>(teacher.size()) != N * V) {
    throw Error("teacher logits must be (B x T, vocab)", {.file = source_, .value = std::to_string(teacher.size())});
  }
  const float loss = teacher.empty() ? crossentropy_forward(probs.data(), logits.data(), target.data(), N, V)
                                     : distill_forward(probs.data(), teacher.data(), logits.data(), N, V);
  if (!backward) return loss;
  ensure_grads();

  // Backward, in reverse; dx: the gradient of the residual stream.
  std::vector<float>& dlogits = logits;
  if (teacher.empty()) {
    crossentropy_backward(dlogits.data(), probs.data(), target.data(), N, V, 1.0f);
  } else {
    distill_backward(dlogits.data(), probs.data(), teacher.data(), N, V, 1.0f);
  }
  std::vector<float> dhf(static_cast<size_t>(N * C), 0.0f), dx(static_cast<size_t>(N * C), 0.0f), dnorm(static_cast<size_t>(C), 0.0f);
  matmul_backward(dhf.data(), head.trainable ? head.grad.data() : nullptr, dlogits.data(), hf.data(), head.value.data(), N, C, V);
  rmsnorm_backward(dx.data(), norm_f.trainable ? norm_f.grad.data() : dnorm.data(), dhf.data(), x.data(), norm_f.value.data(), rstdf.data(), N, C);
  for (int64_t l = L - 1; l >= 0; --l) {
    BlockCache& s = blocks[l];
    if (checkpointing_) {
      const std::vector<float> input = std::move(s.x);
      block_forward(l, input.data(), B, T, rope_table, s, next.data());
    }
    block_backward(l, s, B, T, rope_table, dx.data());
    s = {};  // this block's activations are no longer needed
  }
  if (params_[0].trainable) embedding_backward(params_[0].grad.data(), dx.data(), in.data(), N, C);
  return loss;
}

void TrainModel::block_output(int64_t layer, std::span<const float> x, int64_t B, int64_t T, float* out) {
  BlockCache s;
  block_forward(layer, x.data(), B, T, RopeTable(T, config_.head_dim(), config_.rope_theta), s, out);
}

float TrainModel::block_mse(int64_t layer, std::span<const float> x, std::span<const float> target, int64_t B, int64_t T) {
  const int64_t n = B * T * config_.dim;
  if (static_cast<int64_t>(x.size()) != n || static_cast<int64_t>(target.size()) != n) {
    throw Error("block input and target must be (B, T, dim)", {.file = source_, .value = std::to_string(x.size()) + " and " + std::to_string(target.size())});
  }
  ensure_grads();
  const RopeTable rope(T, config_.head_dim(), config_.rope_theta);
  BlockCache s;
  std::vector<float> out(static_cast<size_t>(n));
  block_forward(layer, x.data(), B, T, rope, s, out.data());
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {  // loss = mean (out − target)²; d out = 2 (out − target) / n
    const float d = out[i] - target[i];
    sum += static_cast<double>(d) * d;
    out[i] = 2.0f * d / static_cast<float>(n);
  }
  block_backward(layer, s, B, T, rope, out.data());
  return static_cast<float>(sum / static_cast<double>(n));
}

}  // namespace lowbit
