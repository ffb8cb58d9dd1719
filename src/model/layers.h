// The layers of a Llama block, one function each, in the style of llm.c: shapes in the
// comments, every output in a buffer the caller owns, no hidden state. The engine
// (engine.cpp) is built from these; a backward pass will sit beside each one.
// T is the number of tokens being run.
#pragma once

#include <cstdint>
#include <vector>

#include "lowbit/kernels.h"
#include "lowbit/model.h"
#include "model/kv_cache.h"

namespace lowbit {

// From this many tokens on, matmul and attention run through BLAS.
inline constexpr int64_t kGemmMinTokens = 8;

// out: (T, n) = x: (T, n) / rms(x) * weight: (n); the sum of squares by isa.dot_f32.
void rmsnorm(const float* x, const float* weight, int64_t T, int64_t n, float eps, float* out, const IsaKernels& isa);

// cos/sin of every position and frequency: (max_context, head_dim/2) each.
// cos/sin of every position's angles; the inverse frequencies 1 / theta^(2i/head_dim)
// (float32, as torch computes them) divided by rope_freq_divisors(scaling); YaRN scales
// cos and sin by its attention factor.
struct RopeTable {
  RopeTable(int64_t max_context, int64_t head_dim, float theta, const RopeScaling& scaling = {});
  std::vector<float> cos, sin;
  int64_t half;
};

// v: (T, n_heads * head_dim), each head rotated in place by its position pos + t, by isa's
// rope (rope_ref in the scalar set; every set gives the same bits).
void rope(float* v, int64_t T, int64_t pos, int64_t n_heads, int64_t head_dim, RopeStyle style, const RopeTable& table,
          const IsaKernels& isa);

// out: (T, n_heads * head_dim) = causal softmax(q kᵀ / sqrt(head_dim)) v, q: (T, n_heads *
// head_dim) at positions [pos, pos + T); keys and values of positions [0, pos + T) are read
// from `cache` (layer `layer`); query head h reads KV head h / (n_heads / n_kv_heads).
// window > 0: a query at position p sees only positions (p - window, p] (Mistral's
// sliding window).
// The reference computes each (token, head) with the scalar set (ref_kernels()); attention()
// uses BLAS for T >= kGemmMinTokens, and below it isa's dot, softmax and axpy (isa's
// softmax in both).
void attention(const float* q, const KvCache& cache, int64_t layer, int64_t T, int64_t pos, int64_t n_heads,
               int64_t n_kv_heads, int64_t head_dim, float* out, const IsaKernels& isa, int64_t window = 0);
void attention_ref(const float* q, const KvCache& cache, int64_t layer, int64_t T, int64_t pos, int64_t n_heads,
                   int64_t n_kv_heads, int64_t head_dim, float* out, int64_t window = 0);

// gate: (n) <- silu(gate) * up: (n), by `fn` (swiglu_ref or a kernel set's), in parallel
// chunks when n is large.
void swiglu(float* gate, const float* up, int64_t n, void (*fn)(float*, const float*, int64_t));

// x: (n) += y: (n)
void add_residual(float* x, const float* y, int64_t n);

// y: (T, w.rows) = x: (T, w.cols) · wᵀ, w in any format. Reference: each row decoded to
// fp32 once, T fp32 dot products. matmul() (engine.h, src/kernels/linear.cpp) is the fast
// version: the kernel table's int8 path, or SGEMM on decoded panels from kGemmMinTokens on.
void matmul_ref(const Weight& w, const float* x, int64_t T, float* y);
// W8A8: y: (T, w.rows) from xq: T bnb_int8 rows (the activations) and w in bnb_int8, by
// `tile` (IsaKernels::w8a8_tile), one panel (4 weight rows) against 4 tokens at a time;
// panels: w8a8_weight_panels of a (rows, cols) weight.
using W8A8Tile = void (*)(const uint8_t*, int, const uint8_t*, int, int64_t, float*, int64_t);
void w8a8_matmul(std::span<const uint8_t> panels, int64_t rows, int64_t cols, const uint8_t* xq, int64_t T, float* y, W8A8Tile tile);
// An int8 per-channel weight (bnb_int8, int8_pc_sym) as W8A8 panels (w8a8_pack_panels):
// int8_pc_sym's row (f16 scale s, codes q + 128) enters as (f32 127·s, q); value q·s
// either way. Empty for any other format.
std::vector<uint8_t> w8a8_weight_panels(const Weight& w);
// act rows with one static scale for every token (Engine per_tensor activations): x:
// (T, cols) → T rows of `act` (bnb_int8: f32 127·scale, codes clamp(round(x / scale),
// -128, 127); fp8_e4m3/e5m2: f32 scale, codes fp8(clamp(x / scale, ±max))).
std::vector<uint8_t> quantize_static_rows(const Format& act, const float* x, int64_t T, int64_t cols, float scale);
// x: (T, cols) → out: (T, cols), each value as the int8 activation kernels see it:
// q * d per sub-block of 16 (quantize_q8 of the scalar set).
void round_through_q8_ref(const float* x, int64_t T, int64_t cols, std::vector<float>& out);
// The same loop with another fp32 dot product (the float path's decode fallback).
void matmul_decoded(const Weight& w, const float* x, int64_t T, float* y, float (*dot)(const float*, const float*, int64_t));

// Whether w is fp32 data that can be read in place (a safetensors header may leave the data
// at any offset; unaligned f32 rows are decoded like any other format).
bool f32_in_place(const Weight& w);

}  // namespace lowbit
