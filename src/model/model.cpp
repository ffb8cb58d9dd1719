// Model: weight access and bookkeeping; ModelConfig validation.
#include "lowbit/model.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "lowbit/error.h"

namespace lowbit {

std::vector<float> Weight::to_f32() const {
  std::vector<float> out(static_cast<size_t>(numel()));
  format->dequantize(data.data(), rows, cols, 0, rows, out.data());
  return out;
}

void Weight::row_to_f32(int64_t r, float* out) const { format->dequantize(data.data(), rows, cols, r, r + 1, out); }

std::string layer_tensor_name(int64_t layer, const char* what) {
  const std::string w(what);
  return "blk." + std::to_string(layer) + "." + w + (w.find('.') == std::string::npos ? ".weight" : "");
}

void ModelConfig::validate(const std::string& source) const {
  auto positive = [&](int64_t v, const char* field) {
    if (v <= 0 || v > (int64_t{1} << 31)) {
      throw Error(std::string("invalid model dimension '") + field + "'", {.file = source, .value = std::to_string(v)});
    }
  };
  positive(dim, "dim");
  positive(hidden_dim, "hidden_dim");
  positive(n_layers, "n_layers");
  positive(n_heads, "n_heads");
  positive(n_kv_heads, "n_kv_heads");
  positive(vocab_size, "vocab_size");
  positive(context_length, "context_length");
  if (head_dim_override > 0) {
    if (head_dim_override % 2 != 0 || head_dim_override > (int64_t{1} << 20)) {
      throw Error("head_dim must be even", {.file = source, .value = std::to_string(head_dim_override)});
    }
  } else if (dim % n_heads != 0 || (dim / n_heads) % 2 != 0) {
    throw Error("dim is not a multiple of 2 x n_heads", {.file = source, .value = std::to_string(dim) + " / " + std::to_string(n_heads)});
  }
  if (n_heads % n_kv_heads != 0) {
    throw Error("n_heads is not a multiple of n_kv_heads", {.file = source, .value = std::to_string(n_heads) + " / " + std::to_string(n_kv_heads)});
  }
  if (!(rope_theta > 0) || !(norm_eps > 0)) {
    throw Error("rope_theta and norm_eps must be positive", {.file = source});
  }
  if (sliding_window < 0) throw Error("sliding_window must not be negative", {.file = source, .value = std::to_string(sliding_window)});
  const RopeScaling& r = rope_scaling;
  if (r.type == RopeScalingType::kFreqFactors) {
    if (static_cast<int64_t>(r.freq_factors.size()) != head_dim() / 2) {
      throw Error("RoPE frequency factors: expected head_dim / 2 = " + std::to_string(head_dim() / 2),
                  {.file = source, .tensor = "rope_freqs.weight", .value = std::to_string(r.freq_factors.size())});
    }
    for (float f : r.freq_factors) {
      if (!(f > 0) || !std::isfinite(f)) throw Error("RoPE frequency factor is not positive", {.file = source, .tensor = "rope_freqs.weight", .value = std::to_string(f)});
    }
  }
  if (r.type == RopeScalingType::kYarn) {
    if (r.original_context <= 0) throw Error("YaRN needs the original context length", {.file = source, .value = std::to_string(r.original_context)});
    if (!(r.beta_fast > 0) || !(r.beta_slow > 0) || !std::isfinite(r.beta_fast) || !std::isfinite(r.beta_slow) || !(r.attention_factor >= 0)) {
      throw Error("YaRN beta_fast, beta_slow must be positive and attention_factor not negative", {.file = source});
    }
  }
  if ((r.type == RopeScalingType::kLinear || r.type == RopeScalingType::kLlama3 || r.type == RopeScalingType::kYarn) &&
      !(r.factor > 0 && std::isfinite(r.factor))) {
    throw Error("rope_scaling.factor must be positive", {.file = source, .value = std::to_string(r.factor)});
  }
}

float yarn_attention_factor(const RopeScaling& r) {
  if (r.attention_factor > 0) return r.attention_factor;
  return r.factor <= 1 ? 1.0f : 0.1f * std::log(r.factor) + 1.0f;
}

std::vector<float> rope_freq_divisors(const RopeScaling& r, int64_t head_dim, float theta) {
  if (r.type == RopeScalingType::kNone) return {};
  if (r.type == RopeScalingType::kFreqFactors) return r.freq_factors;
  const int64_t half = head_dim / 2;
  if (r.type == RopeScalingType::kLinear) return std::vector<float>(static_cast<size_t>(half), r.factor);
  // YaRN's ramp ends: the pair indices that turn beta_fast and beta_slow times over the
  // original context, floored and ceiled (transformers' find_correction_range, ggml's
  // rope_yarn_corr_dims).
  const double d = static_cast<double>(head_dim), ctx = static_cast<double>(r.original_context);
  auto pair_of = [&](double rotations) { return d * std::log(ctx / (rotations * 2 * M_PI)) / (2 * std::log(static_cast<double>(theta))); };
  const double yarn_low = std::max(0.0, std::floor(pair_of(r.beta_fast)));
  double yarn_high = std::min(d - 1, std::ceil(pair_of(r.beta_slow)));
  if (yarn_low == yarn_high) yarn_high += 0.001;
  const double low_wavelen = ctx / r.low_freq_factor, high_wavelen = ctx / r.high_freq_factor;  // llama3
  std::vector<float> out;
  for (int64_t i = 0; i < half; ++i) {
    double f = 1;
    if (r.type == RopeScalingType::kYarn) {  // freq · (ramp / factor + 1 - ramp)
      const double ramp = std::clamp((static_cast<double>(i) - yarn_low) / (yarn_high - yarn_low), 0.0, 1.0);
      f = 1 / (ramp / r.factor + 1 - ramp);
    } else {  // llama3: the frequency in float32, as torch computes it; the rest in double, as the converter
      const float freq = 1.0f / std::pow(theta, static_cast<float>(2 * i) / static_cast<float>(head_dim));
      const double wavelen = 2 * M_PI / freq;
      if (wavelen > low_wavelen) {
        f = r.factor;
      } else if (!(wavelen < high_wavelen)) {
        const double smooth = (ctx / wavelen - r.low_freq_factor) / (r.high_freq_factor - r.low_freq_factor);
        f = 1 / ((1 - smooth) / r.factor + smooth);
      }
    }
    out.push_back(static_cast<float>(f));
  }
  return out;
}

std::vector<const Weight*> Model::weights() const {
  std::vector<const Weight*> out{&token_embd};
  for (const auto& l : layers) {
    for (const Weight* w : {&l.attn_norm, &l.attn_q, &l.attn_q_bias, &l.attn_k, &l.attn_k_bias, &l.attn_v, &l.attn_v_bias,
                            &l.attn_q_norm, &l.attn_k_norm, &l.attn_output, &l.attn_output_bias, &l.ffn_norm, &l.ffn_gate, &l.ffn_up, &l.ffn_down}) {
      if (w->format != nullptr) out.push_back(w);  // absent biases and q/k norms are not weights of this model
    }
  }
  out.push_back(&output_norm);
  if (!config.tied_output) out.push_back(&output);
  return out;
}

uint64_t Model::weight_bytes() const {
  uint64_t n = 0;
  for (const Weight* w : weights()) n += w->data.size();
  return n;
}

int64_t Model::parameter_count() const {
  int64_t n = 0;
  for (const Weight* w : weights()) n += w->numel();
  return n;
}

}  // namespace lowbit
