// Llama block layers (see layers.h). Scalar code, OpenMP over independent rows/heads;
// attention's prefill path uses BLAS. The fast matmul is src/kernels/linear.cpp.
#include "model/layers.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "lowbit/blas_setup.h"
#include "lowbit/engine.h"
#include "lowbit/error.h"
#include "lowbit/float_convert.h"
#include "lowbit/kernels.h"
#include "core/sgemm_tiles.h"

namespace lowbit {

bool f32_in_place(const Weight& w) {
  static const Format* const f32 = &format_by_name("f32");
  return w.format == f32 && reinterpret_cast<uintptr_t>(w.data.data()) % alignof(float) == 0;
}

void rmsnorm(const float* x, const float* weight, int64_t T, int64_t n, float eps, float* out, const IsaKernels& isa) {
  for (int64_t t = 0; t < T; ++t) {
    const float* xt = x + t * n;
    const float ss = isa.dot_f32(xt, xt, n);
    const float scale = 1.0f / std::sqrt(ss / n + eps);
    for (int64_t i = 0; i < n; ++i) out[t * n + i] = weight[i] * (scale * xt[i]);
  }
}

RopeTable::RopeTable(int64_t max_context, int64_t head_dim, float theta, const RopeScaling& scaling)
    : cos(max_context * (head_dim / 2)), sin(cos.size()), half(head_dim / 2) {
  const std::vector<float> divisors = rope_freq_divisors(scaling, head_dim, theta);
  const float scale = scaling.type == RopeScalingType::kYarn ? yarn_attention_factor(scaling) : 1.0f;
  std::vector<float> freqs(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i) {
    const float freq = 1.0f / std::pow(theta, static_cast<float>(2 * i) / static_cast<float>(head_dim));
    freqs[i] = divisors.empty() ? freq : freq / divisors[static_cast<size_t>(i)];
  }
  for (int64_t p = 0; p < max_context; ++p) {
    for (int64_t i = 0; i < half; ++i) {
      const float freq = freqs[i];
      const float angle = static_cast<float>(p) * freq;
      cos[p * half + i] = std::cos(angle) * scale;
      sin[p * half + i] = std::sin(angle) * scale;
    }
  }
}

void rope(float* v, int64_t T, int64_t pos, int64_t n_heads, int64_t head_dim, RopeStyle style, const RopeTable& table,
          const IsaKernels& isa) {
  const int64_t half = head_dim / 2;
  for (int64_t t = 0; t < T; ++t) {
    isa.rope(v + t * n_heads * head_dim, n_heads, head_dim, style == RopeStyle::kAdjacentPairs, table.cos.data() + (pos + t) * half,
             table.sin.data() + (pos + t) * half);
  }
}

namespace {

// The first position a query at `p` attends to: 0, or with a sliding window of W the
// W - 1 positions before it (as transformers' and llama.cpp's masks: p - j < W).
int64_t first_visible(int64_t p, int64_t window) { return window > 0 ? std::max<int64_t>(0, p - window + 1) : 0; }

// Prefill attention through BLAS: per head, S = q_h · K_hᵀ (T, pos + T) by SGEMM, the
// causal softmax row by row, then out_h = P · V_h by SGEMM. Same math as attention_ref.
void attention_gemm(const float* q, const KvCache& cache, int64_t layer, int64_t T, int64_t pos, int64_t n_heads,
                    int64_t n_kv_heads, int64_t head_dim, float* out, const IsaKernels& isa, int64_t window) {
  const int64_t group = n_heads / n_kv_heads, n_pos = pos + T, dim = n_heads * head_dim;
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  std::vector<float> p(static_cast<size_t>(T * n_pos)), kbuf, vbuf;
  const float* keys = nullptr;
  const float* values = nullptr;
  for (int64_t h = 0; h < n_heads; ++h) {
    const int64_t kvh = h / group;
    if (h % group == 0) {  // the head's keys and values, decoded once for the heads that share them
      keys = cache.keys(layer, kvh, 0, n_pos, kbuf);
      values = cache.values(layer, kvh, 0, n_pos, vbuf);
    }
    sgemm_tiles(false, true, T, n_pos, head_dim, scale, q + h * head_dim, dim, keys, head_dim, 0.0f, p.data(), n_pos);
#pragma omp parallel for schedule(static) if (T * n_pos >= (1 << 14))
    for (int64_t t = 0; t < T; ++t) {
      float* row = p.data() + t * n_pos;
      const int64_t seen = pos + t + 1;  // token t sees positions [first, pos + t]
      const int64_t first = first_visible(pos + t, window);
      isa.softmax(row + first, seen - first);
      std::fill(row, row + first, 0.0f);
      std::fill(row + seen, row + n_pos, 0.0f);
    }
    sgemm_tiles(false, false, T, head_dim, n_pos, 1.0f, p.data(), n_pos, values, head_dim, 0.0f, out + h * head_dim, dim);
  }
}


// Per (token, KV head, block of up to kQueryBlock of the query heads that share it): the
// scores of the block's heads by one dot_rows call (each key row read once for all of
// them), softmax per head, then the values' weighted sums by one weighted_sum call, all
// from `isa` (the reference: the scalar set).
void attention_dots(const float* q, const KvCache& cache, int64_t layer, int64_t T, int64_t pos, int64_t n_heads,
                    int64_t n_kv_heads, int64_t head_dim, float* out, const IsaKernels& isa, int64_t window) {
  constexpr int64_t kQueryBlock = 4;
  const int64_t group = n_heads / n_kv_heads, blocks = (group + kQueryBlock - 1) / kQueryBlock;
  const int64_t items = T * n_kv_heads * blocks;
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
#pragma omp parallel if (items >= 2)
  {
    std::vector<float> score(static_cast<size_t>(kQueryBlock * (pos + T)));  // (nq, n_pos)
    std::vector<float> kbuf, vbuf;  // decoded rows of a quantized cache
#pragma omp for schedule(static)
    for (int64_t item = 0; item < items; ++item) {
      const int64_t t = item / (n_kv_heads * blocks), kvh = item / blocks % n_kv_heads, h0 = kvh * group + item % blocks * kQueryBlock;
      const int nq = static_cast<int>(std::min(kQueryBlock, (kvh + 1) * group - h0));
      // Keys and values of positions [from, pos + t].
      const int64_t from = first_visible(pos + t, window), n_pos = pos + t + 1 - from, first = (t * n_heads + h0) * head_dim;
      const float* keys = cache.keys(layer, kvh, from, n_pos, kbuf);
      const float* values = cache.values(layer, kvh, from, n_pos, vbuf);
      isa.dot_rows(q + first, head_dim, nq, keys, head_dim, n_pos, head_dim, score.data(), n_pos);
      for (int j = 0; j < nq; ++j) {
        float* s = score.data() + j * n_pos;
        for (int64_t p = 0; p < n_pos; ++p) s[p] *= scale;
        isa.softmax(s, n_pos);
      }
      isa.weighted_sum(score.data(), n_pos, nq, values, head_dim, n_pos, head_dim, out + first, head_dim);
    }
  }
}

}  // namespace

void attention(const float* q, const KvCache& cache, int64_t layer, int64_t T, int64_t pos, int64_t n_heads,
               int64_t n_kv_heads, int64_t head_dim, float* out, const IsaKernels& isa, int64_t window) {
  if (T >= kGemmMinTokens) {
    ensure_blas_kernels();
    return attention_gemm(q, cache, layer, T, pos, n_heads, n_kv_heads, head_dim, out, isa, window);
  }
  attention_dots(q, cache, layer, T, pos, n_heads, n_kv_heads, head_dim, out, isa, window);
}

void attention_ref(const float* q, const KvCache& cache, int64_t layer, int64_t T, int64_t pos, int64_t n_heads,
                   int64_t n_kv_heads, int64_t head_dim, float* out, int64_t window) {
  attention_dots(q, cache, layer, T, pos, n_heads, n_kv_heads, head_dim, out, ref_kernels(), window);
}

void swiglu(float* gate, const float* up, int64_t n, void (*fn)(float*, const float*, int64_t)) {
  constexpr int64_t kPerThread = int64_t{1} << 14;  // below this a parallel region costs more than it saves
  if (n < 2 * kPerThread) return fn(gate, up, n);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i += kPerThread) fn(gate + i, up + i, std::min(kPerThread, n - i));
}

void add_residual(float* x, const float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

void matmul_ref(const Weight& w, const float* x, int64_t T, float* y) { matmul_decoded(w, x, T, y, &dot_f32_ref); }

void w8a8_matmul(std::span<const uint8_t> panels, int64_t rows, int64_t cols, const uint8_t* xq, int64_t T, float* y, W8A8Tile tile) {
  const int64_t row_bytes = 4 + cols, panel_bytes = w8a8_panel_bytes(cols);
#pragma omp parallel for schedule(static) if (rows * cols * T >= (1 << 15))
  for (int64_t r = 0; r < rows; r += 4) {
    const int nr = static_cast<int>(std::min<int64_t>(4, rows - r));
    for (int64_t t = 0; t < T; t += 4) {
      const int nt = static_cast<int>(std::min<int64_t>(4, T - t));
      tile(xq + t * row_bytes, nt, panels.data() + (r / 4) * panel_bytes, nr, cols, y + t * rows + r, rows);
    }
  }
}

std::vector<uint8_t> w8a8_weight_panels(const Weight& w) {
  const std::string_view f = w.format->name;
  if (f == "bnb_int8") return w8a8_pack_panels(w.data.data(), w.rows, w.cols);
  if (f != "int8_pc_sym") return {};
  const int64_t in_row = 2 + w.cols, out_row = 4 + w.cols;  // int_affine.cpp: f16 scale, then 8-bit codes
  std::vector<uint8_t> out(static_cast<size_t>(w.rows * out_row));
  for (int64_t r = 0; r < w.rows; ++r) {
    const uint8_t* src = w.data.data() + r * in_row;
    uint8_t* dst = out.data() + r * out_row;
    uint16_t h;
    std::memcpy(&h, src, 2);
    const float absmax = fp16_to_fp32(h) * 127.0f;
    std::memcpy(dst, &absmax, 4);
    for (int64_t c = 0; c < w.cols; ++c) dst[4 + c] = static_cast<uint8_t>(src[2 + c] ^ 0x80);  // q + 128 → q
  }
  return w8a8_pack_panels(out.data(), w.rows, w.cols);
}

std::vector<uint8_t> quantize_static_rows(const Format& act, const float* x, int64_t T, int64_t cols, float scale) {
  const std::string_view f = act.name;
  std::vector<uint8_t> out(static_cast<size_t>(T * (4 + cols)));
  const float inv = 1.0f / scale;
  for (int64_t t = 0; t < T; ++t) {
    uint8_t* row = out.data() + t * (4 + cols);
    const float* xt = x + t * cols;
    if (f == "bnb_int8") {
      const float absmax = 127.0f * scale;
      std::memcpy(row, &absmax, 4);
      for (int64_t c = 0; c < cols; ++c) {
        row[4 + c] = static_cast<uint8_t>(static_cast<int8_t>(std::clamp(std::nearbyint(xt[c] * inv), -128.0f, 127.0f)));
      }
    } else if (f == "fp8_e4m3" || f == "fp8_e5m2") {
      const bool e4m3 = f == "fp8_e4m3";
      const float max = e4m3 ? 448.0f : 57344.0f;
      std::memcpy(row, &scale, 4);
      for (int64_t c = 0; c < cols; ++c) {
        const float v = std::clamp(xt[c] * inv, -max, max);
        row[4 + c] = e4m3 ? fp32_to_fp8_e4m3(v) : fp32_to_fp8_e5m2(v);
      }
    } else {
      throw Error("static activation scales for int8 and fp8 activations only", {.value = std::string(f)});
    }
  }
  return out;
}

void round_through_q8_ref(const float* x, int64_t T, int64_t cols, std::vector<float>& out) {
  const int64_t padded = q8_padded(cols);
  std::vector<int8_t> q(static_cast<size_t>(padded));
  std::vector<float> d_lane(static_cast<size_t>(padded / 4)), sum(static_cast<size_t>(padded / kQ8Sub));
  out.resize(static_cast<size_t>(T * cols));
  for (int64_t t = 0; t < T; ++t) {
    ref_kernels().quantize_q8(x + t * cols, cols, q.data(), d_lane.data(), sum.data());
    for (int64_t i = 0; i < cols; ++i) out[t * cols + i] = static_cast<float>(q[i]) * d_lane[i / 4];
  }
}

void matmul_decoded(const Weight& w, const float* x, int64_t T, float* y, float (*dot)(const float*, const float*, int64_t)) {
  const int64_t rows = w.rows, cols = w.cols;
  const bool direct = f32_in_place(w);
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

}  // namespace lowbit
