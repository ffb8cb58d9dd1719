// The training layers (see train_layers.h). Products through BLAS; the rest in loops over
// rows, OpenMP over independent rows or (sequence, head) pairs.
#include "train/train_layers.h"
#include "core/sgemm_tiles.h"


#include <algorithm>
#include <cmath>
#include <vector>

namespace lowbit::train {

void embedding_forward(float* out, const int32_t* tokens, const float* wte, int64_t N, int64_t C) {
  for (int64_t n = 0; n < N; ++n) std::copy_n(wte + static_cast<int64_t>(tokens[n]) * C, C, out + n * C);
}

void embedding_backward(float* dwte, const float* dout, const int32_t* tokens, int64_t N, int64_t C) {
  for (int64_t n = 0; n < N; ++n) {
    float* d = dwte + static_cast<int64_t>(tokens[n]) * C;
    for (int64_t c = 0; c < C; ++c) d[c] += dout[n * C + c];
  }
}

void rmsnorm_forward(float* out, float* rstd, const float* x, const float* w, int64_t N, int64_t C, float eps) {
#pragma omp parallel for schedule(static) if (N * C >= (1 << 16))
  for (int64_t n = 0; n < N; ++n) {
    const float* xn = x + n * C;
    float ss = 0;
    for (int64_t c = 0; c < C; ++c) ss += xn[c] * xn[c];
    const float r = 1.0f / std::sqrt(ss / static_cast<float>(C) + eps);
    rstd[n] = r;
    for (int64_t c = 0; c < C; ++c) out[n * C + c] = xn[c] * r * w[c];
  }
}

// y_i = x_i r w_i with r = (Σx²/C + eps)^(-1/2), dr/dx_j = −r³ x_j / C:
// dx_j = r (dy_j w_j) − r³ x_j / C · Σ_i dy_i w_i x_i;  dw_i = Σ_n dy_i x_i r.
void rmsnorm_backward(float* dx, float* dw, const float* dout, const float* x, const float* w, const float* rstd, int64_t N, int64_t C) {
  for (int64_t n = 0; n < N; ++n) {
    const float* xn = x + n * C;
    const float* dy = dout + n * C;
    const float r = rstd[n];
    float dot = 0;
    for (int64_t c = 0; c < C; ++c) dot += dy[c] * w[c] * xn[c];
    const float k = r * r * r * dot / static_cast<float>(C);
    for (int64_t c = 0; c < C; ++c) {
      dx[n * C + c] += r * dy[c] * w[c] - k * xn[c];
      dw[c] += dy[c] * xn[c] * r;
    }
  }
}

void matmul_forward(float* out, const float* x, const float* w, int64_t N, int64_t C, int64_t OC) {
  sgemm_tiles(false, true, N, OC, C, 1.0f, x, C, w, C, 0.0f, out, OC);
}

void matmul_backward(float* dx, float* dw, const float* dout, const float* x, const float* w, int64_t N, int64_t C, int64_t OC) {
  if (dx != nullptr) {  // (N, OC) · (OC, C)
    sgemm_tiles(false, false, N, C, OC, 1.0f, dout, OC, w, C, 1.0f, dx, C);
  }
  if (dw != nullptr) {  // (OC, N) · (N, C)
    sgemm_tiles(true, false, OC, C, N, 1.0f, dout, OC, x, C, 1.0f, dw, C);
  }
}

namespace {

// Each (a, b) pair of every head rotated by angle ±θ(t, i): sign +1 forward, −1 backward.
void rotate(float* x, int64_t B, int64_t T, int64_t H, int64_t hd, RopeStyle style, const float* cos, const float* sin, float sign) {
  const int64_t half = hd / 2;
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t t = 0; t < T; ++t) {
      const float* c = cos + t * half;
      const float* s = sin + t * half;
      for (int64_t h = 0; h < H; ++h) {
        float* v = x + ((b * T + t) * H + h) * hd;
        for (int64_t i = 0; i < half; ++i) {
          const int64_t ia = style == RopeStyle::kAdjacentPairs ? 2 * i : i, ib = style == RopeStyle::kAdjacentPairs ? 2 * i + 1 : i + half;
          const float a = v[ia], bb = v[ib], si = sign * s[i];
          v[ia] = a * c[i] - bb * si;
          v[ib] = a * si + bb * c[i];
        }
      }
    }
  }
}

}  // namespace

void rope_forward(float* x, int64_t B, int64_t T, int64_t H, int64_t hd, RopeStyle style, const float* cos, const float* sin) {
  rotate(x, B, T, H, hd, style, cos, sin, 1.0f);
}

// The rotation is orthogonal: its transpose is the rotation by −θ.
void rope_backward(float* dx, int64_t B, int64_t T, int64_t H, int64_t hd, RopeStyle style, const float* cos, const float* sin) {
  rotate(dx, B, T, H, hd, style, cos, sin, -1.0f);
}

void attention_forward(float* out, float* probs, const float* q, const float* k, const float* v, int64_t B, int64_t T, int64_t H,
                       int64_t KVH, int64_t hd) {
  const int64_t group = H / KVH;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t h = 0; h < H; ++h) {
      const int64_t kh = h / group;
      for (int64_t t = 0; t < T; ++t) {
        const float* qt = q + ((b * T + t) * H + h) * hd;
        float* p = probs + ((b * H + h) * T + t) * T;
        float max = -INFINITY;
        for (int64_t j = 0; j <= t; ++j) {
          const float* kj = k + ((b * T + j) * KVH + kh) * hd;
          float s = 0;
          for (int64_t i = 0; i < hd; ++i) s += qt[i] * kj[i];
          p[j] = s * scale;
          max = std::max(max, p[j]);
        }
        float sum = 0;
        for (int64_t j = 0; j <= t; ++j) {
          p[j] = std::exp(p[j] - max);
          sum += p[j];
        }
        for (int64_t j = 0; j <= t; ++j) p[j] /= sum;
        for (int64_t j = t + 1; j < T; ++j) p[j] = 0;
        float* o = out + ((b * T + t) * H + h) * hd;
        std::fill_n(o, hd, 0.0f);
        for (int64_t j = 0; j <= t; ++j) {
          const float* vj = v + ((b * T + j) * KVH + kh) * hd;
          for (int64_t i = 0; i < hd; ++i) o[i] += p[j] * vj[i];
        }
      }
    }
  }
}

// Per (b, h, t): dp_j = dout·v_j, dv_j += p_j dout, ds_j = p_j (dp_j − Σ_l p_l dp_l),
// dq += Σ_j ds_j k_j · scale, dk_j += ds_j q · scale. KV heads are shared by `group` query
// heads, so dk/dv are summed per KV head: the loop runs over (b, KV head) in parallel.
void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* probs, const float* q, const float* k,
                        const float* v, int64_t B, int64_t T, int64_t H, int64_t KVH, int64_t hd) {
  const int64_t group = H / KVH;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t kh = 0; kh < KVH; ++kh) {
      std::vector<float> dp(static_cast<size_t>(T));
      for (int64_t h = kh * group; h < (kh + 1) * group; ++h) {
        for (int64_t t = 0; t < T; ++t) {
          const float* p = probs + ((b * H + h) * T + t) * T;
          const float* dot = dout + ((b * T + t) * H + h) * hd;
          const float* qt = q + ((b * T + t) * H + h) * hd;
          float* dqt = dq + ((b * T + t) * H + h) * hd;
          float pdp = 0;
          for (int64_t j = 0; j <= t; ++j) {
            const float* vj = v + ((b * T + j) * KVH + kh) * hd;
            float* dvj = dv + ((b * T + j) * KVH + kh) * hd;
            float s = 0;
            for (int64_t i = 0; i < hd; ++i) {
              s += dot[i] * vj[i];
              dvj[i] += p[j] * dot[i];
            }
            dp[j] = s;
            pdp += p[j] * s;
          }
          for (int64_t j = 0; j <= t; ++j) {
            const float ds = p[j] * (dp[j] - pdp) * scale;
            const float* kj = k + ((b * T + j) * KVH + kh) * hd;
            float* dkj = dk + ((b * T + j) * KVH + kh) * hd;
            for (int64_t i = 0; i < hd; ++i) {
              dqt[i] += ds * kj[i];
              dkj[i] += ds * qt[i];
            }
          }
        }
      }
    }
  }
}

void swiglu_forward(float* out, const float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

// silu(g) = g σ(g), silu'(g) = σ(g) (1 + g (1 − σ(g))).
void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float s = 1.0f / (1.0f + std::exp(-gate[i]));
    dgate[i] += dout[i] * up[i] * s * (1.0f + gate[i] * (1.0f - s));
    dup[i] += dout[i] * gate[i] * s;
  }
}

float crossentropy_forward(float* probs, const float* logits, const int32_t* targets, int64_t N, int64_t V) {
  double loss = 0;
#pragma omp parallel for reduction(+ : loss) schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    const float* l = logits + n * V;
    float* p = probs + n * V;
    const float max = *std::max_element(l, l + V);
    double sum = 0;
    for (int64_t i = 0; i < V; ++i) {
      p[i] = std::exp(l[i] - max);
      sum += p[i];
    }
    for (int64_t i = 0; i < V; ++i) p[i] = static_cast<float>(p[i] / sum);
    loss += -(static_cast<double>(l[targets[n]] - max) - std::log(sum));
  }
  return static_cast<float>(loss / static_cast<double>(N));
}

void crossentropy_backward(float* dlogits, const float* probs, const int32_t* targets, int64_t N, int64_t V, float dloss) {
  const float k = dloss / static_cast<float>(N);
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t i = 0; i < V; ++i) dlogits[n * V + i] = probs[n * V + i] * k;
    dlogits[n * V + targets[n]] -= k;
  }
}

float distill_forward(float* probs, float* teacher, const float* logits, int64_t N, int64_t V) {
  double loss = 0;
#pragma omp parallel for reduction(+ : loss) schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    // log-softmax of both rows; KL = Σ p_t (log p_t − log p_s)
    const float* l = logits + n * V;
    float *p = probs + n * V, *t = teacher + n * V;
    const float lmax = *std::max_element(l, l + V), tmax = *std::max_element(t, t + V);
    double ls = 0, ts = 0;
    for (int64_t i = 0; i < V; ++i) {
      ls += std::exp(static_cast<double>(l[i] - lmax));
      ts += std::exp(static_cast<double>(t[i] - tmax));
    }
    const double llog = std::log(ls), tlog = std::log(ts);
    double kl = 0;
    for (int64_t i = 0; i < V; ++i) {
      const double log_s = l[i] - lmax - llog, log_t = t[i] - tmax - tlog, pt = std::exp(log_t);
      kl += pt * (log_t - log_s);
      p[i] = static_cast<float>(std::exp(log_s));
      t[i] = static_cast<float>(pt);
    }
    loss += kl;
  }
  return static_cast<float>(loss / static_cast<double>(N));
}

void distill_backward(float* dlogits, const float* probs, const float* teacher, int64_t N, int64_t V, float dloss) {
  const float k = dloss / static_cast<float>(N);
  for (int64_t i = 0; i < N * V; ++i) dlogits[i] = (probs[i] - teacher[i]) * k;
}

}  // namespace lowbit::train
