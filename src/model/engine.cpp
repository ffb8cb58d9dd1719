// Llama forward pass, one function per layer step, shapes in the comments.
// x: (T, dim) activations of the T tokens being run.
#include "lowbit/engine.h"

#include <omp.h>

#include <cmath>
#include <cstring>

#include "lowbit/error.h"

namespace lowbit {
namespace {

float dot(const float* a, const float* b, int64_t n) {
  float acc[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int k = 0; k < 8; ++k) acc[k] += a[i + k] * b[i + k];
  }
  float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

// out: (T, n) = rmsnorm(x: (T, n)) * weight: (n)
void rmsnorm(const float* x, const std::vector<float>& weight, int64_t T, int64_t n, float eps, float* out) {
  for (int64_t t = 0; t < T; ++t) {
    const float* xt = x + t * n;
    float ss = 0;
    for (int64_t i = 0; i < n; ++i) ss += xt[i] * xt[i];
    const float scale = 1.0f / std::sqrt(ss / n + eps);
    for (int64_t i = 0; i < n; ++i) out[t * n + i] = weight[i] * (scale * xt[i]);
  }
}

// Rotates each head of v: (T, n_heads * head_dim) by its position.
void rope(float* v, int64_t T, int64_t pos, int64_t n_heads, int64_t head_dim, RopeStyle style,
          const std::vector<float>& cos_table, const std::vector<float>& sin_table) {
  const int64_t half = head_dim / 2;
  for (int64_t t = 0; t < T; ++t) {
    const float* c = cos_table.data() + (pos + t) * half;
    const float* s = sin_table.data() + (pos + t) * half;
    for (int64_t h = 0; h < n_heads; ++h) {
      float* x = v + (t * n_heads + h) * head_dim;
      for (int64_t i = 0; i < half; ++i) {
        const int64_t a = style == RopeStyle::kAdjacentPairs ? 2 * i : i;
        const int64_t b = style == RopeStyle::kAdjacentPairs ? 2 * i + 1 : i + half;
        const float x0 = x[a], x1 = x[b];
        x[a] = x0 * c[i] - x1 * s[i];
        x[b] = x0 * s[i] + x1 * c[i];
      }
    }
  }
}

}  // namespace

void matmul(const Weight& w, const float* x, int64_t T, float* y) {
  const int64_t rows = w.rows, cols = w.cols;
  // f32 rows are read in place only when the data is float-aligned (a safetensors header
  // may leave it at any offset); otherwise each row is copied out like any other format.
  const bool direct = w.format->name == "f32" && reinterpret_cast<uintptr_t>(w.data.data()) % alignof(float) == 0;
#pragma omp parallel if (rows * cols * T >= (1 << 15))
  {
    std::vector<float> row(direct ? 0 : cols);
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const float* wr = direct ? reinterpret_cast<const float*>(w.data.data()) + r * cols : row.data();
      if (!direct) w.row_to_f32(r, row.data());
      for (int64_t t = 0; t < T; ++t) y[t * rows + r] = dot(wr, x + t * cols, cols);
    }
  }
}

void check_chunk_tokens(const Model& model, int64_t n_ctx) {
  if (n_ctx < kMinChunkTokens || n_ctx > model.config.context_length) {
    throw Error("-c (tokens per chunk) must be between " + std::to_string(kMinChunkTokens) + " and the model's context of " +
                    std::to_string(model.config.context_length),
                {.file = model.source, .value = std::to_string(n_ctx)});
  }
}

// A layer matrix product, shown to the observer first (the output matrix is not: as in
// llama.cpp's imatrix, it is left out of calibration statistics).
void Engine::project(const Weight& w, const float* x, int64_t T, float* y) {
  if (observer_) observer_(w, x, T);
  matmul(w, x, T, y);
}

Engine::Engine(const Model& model, int64_t max_context) : model_(model), max_context_(max_context) {
  const auto& c = model.config;
  if (max_context <= 0) throw Error("context length must be positive", {.value = std::to_string(max_context)});
  key_cache_.assign(c.n_layers, std::vector<float>(static_cast<size_t>(max_context * c.kv_dim())));
  value_cache_ = key_cache_;
  const int64_t half = c.head_dim() / 2;
  rope_cos_.resize(max_context * half);
  rope_sin_.resize(max_context * half);
  for (int64_t p = 0; p < max_context; ++p) {
    for (int64_t i = 0; i < half; ++i) {
      const float freq = 1.0f / std::pow(c.rope_theta, static_cast<float>(2 * i) / static_cast<float>(c.head_dim()));
      const float angle = static_cast<float>(p) * freq;
      rope_cos_[p * half + i] = std::cos(angle);
      rope_sin_[p * half + i] = std::sin(angle);
    }
  }
}

void Engine::forward(std::span<const int32_t> tokens, int64_t pos, float* logits, bool all_logits) {
  const auto& c = model_.config;
  const int64_t T = static_cast<int64_t>(tokens.size());
  if (T == 0) return;
  if (pos < 0 || pos + T > max_context_) {
    throw Error("positions exceed the context", {.value = std::to_string(pos + T) + " > " + std::to_string(max_context_)});
  }
  const int64_t dim = c.dim, kv_dim = c.kv_dim(), hd = c.head_dim(), hidden = c.hidden_dim;
  const int64_t group = c.n_heads / c.n_kv_heads;
  std::vector<float> x(T * dim), xb(T * dim), q(T * dim), k(T * kv_dim), v(T * kv_dim), att_out(T * dim);
  std::vector<float> gate(T * hidden), up(T * hidden);
  for (int64_t t = 0; t < T; ++t) {
    if (tokens[t] < 0 || tokens[t] >= c.vocab_size) {
      throw Error("token id out of range", {.value = std::to_string(tokens[t])});
    }
    model_.token_embd.row_to_f32(tokens[t], x.data() + t * dim);
  }
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const LayerWeights& w = model_.layers[l];
    rmsnorm(x.data(), w.attn_norm.to_f32(), T, dim, c.norm_eps, xb.data());
    project(w.attn_q, xb.data(), T, q.data());
    project(w.attn_k, xb.data(), T, k.data());
    project(w.attn_v, xb.data(), T, v.data());
    rope(q.data(), T, pos, c.n_heads, hd, c.rope_style, rope_cos_, rope_sin_);
    rope(k.data(), T, pos, c.n_kv_heads, hd, c.rope_style, rope_cos_, rope_sin_);
    float* kc = key_cache_[l].data();
    float* vc = value_cache_[l].data();
    std::memcpy(kc + pos * kv_dim, k.data(), T * kv_dim * sizeof(float));
    std::memcpy(vc + pos * kv_dim, v.data(), T * kv_dim * sizeof(float));
    // Causal attention: token t sees positions [0, pos + t].
#pragma omp parallel for collapse(2) schedule(dynamic) if (T * c.n_heads >= 8)
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t h = 0; h < c.n_heads; ++h) {
        const int64_t n_pos = pos + t + 1;
        const int64_t kvh = h / group;
        const float* qh = q.data() + (t * c.n_heads + h) * hd;
        std::vector<float> score(n_pos);
        float max = -INFINITY;
        for (int64_t p = 0; p < n_pos; ++p) {
          score[p] = dot(qh, kc + p * kv_dim + kvh * hd, hd) * scale;
          max = std::max(max, score[p]);
        }
        float sum = 0;
        for (auto& s : score) {
          s = std::exp(s - max);
          sum += s;
        }
        float* out = att_out.data() + (t * c.n_heads + h) * hd;
        std::fill(out, out + hd, 0.0f);
        for (int64_t p = 0; p < n_pos; ++p) {
          const float a = score[p] / sum;
          const float* vp = vc + p * kv_dim + kvh * hd;
          for (int64_t i = 0; i < hd; ++i) out[i] += a * vp[i];
        }
      }
    }
    project(w.attn_output, att_out.data(), T, xb.data());
    for (int64_t i = 0; i < T * dim; ++i) x[i] += xb[i];
    // SwiGLU feed-forward.
    rmsnorm(x.data(), w.ffn_norm.to_f32(), T, dim, c.norm_eps, xb.data());
    project(w.ffn_gate, xb.data(), T, gate.data());
    project(w.ffn_up, xb.data(), T, up.data());
    for (int64_t i = 0; i < T * hidden; ++i) gate[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
    project(w.ffn_down, gate.data(), T, xb.data());
    for (int64_t i = 0; i < T * dim; ++i) x[i] += xb[i];
  }
  if (logits == nullptr) return;
  const int64_t first = all_logits ? 0 : T - 1;
  rmsnorm(x.data() + first * dim, model_.output_norm.to_f32(), T - first, dim, c.norm_eps, xb.data());
  matmul(model_.output, xb.data(), T - first, logits);
}

}  // namespace lowbit
