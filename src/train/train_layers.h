// The training engine's layer functions, each forward beside its backward (llm.c's style):
// float32, row-major, N = B·T token rows. A backward takes the forward's inputs (and what
// the forward saved) and the gradient of its output, and ADDS into the gradients of its
// inputs and parameters (so a parameter used twice, or a residual, accumulates).
#pragma once

#include <cstdint>

#include "lowbit/model.h"

namespace lowbit::train {

// out: (N, C) = wte[tokens[n]]: (V, C).
void embedding_forward(float* out, const int32_t* tokens, const float* wte, int64_t N, int64_t C);
void embedding_backward(float* dwte, const float* dout, const int32_t* tokens, int64_t N, int64_t C);

// out: (N, C) = x · rstd · w, rstd: (N) = 1 / sqrt(mean(x²) + eps) saved for the backward.
void rmsnorm_forward(float* out, float* rstd, const float* x, const float* w, int64_t N, int64_t C, float eps);
void rmsnorm_backward(float* dx, float* dw, const float* dout, const float* x, const float* w, const float* rstd, int64_t N, int64_t C);

// out: (N, OC) = x: (N, C) · wᵀ, w: (OC, C) (a linear without bias).
void matmul_forward(float* out, const float* x, const float* w, int64_t N, int64_t C, int64_t OC);
// dx: (N, C) += dout · w; dw: (OC, C) += doutᵀ · x. dx or dw may be null (not needed).
void matmul_backward(float* dx, float* dw, const float* dout, const float* x, const float* w, int64_t N, int64_t C, int64_t OC);

// RoPE of x: (B, T, H, hd) in place, position t of each sequence, pairs as `style` says;
// cos/sin: (T, hd/2). The backward rotates the gradient back (the transpose).
void rope_forward(float* x, int64_t B, int64_t T, int64_t H, int64_t hd, RopeStyle style, const float* cos, const float* sin);
void rope_backward(float* dx, int64_t B, int64_t T, int64_t H, int64_t hd, RopeStyle style, const float* cos, const float* sin);

// Causal attention with grouped KV heads: q: (B, T, H, hd), k, v: (B, T, KVH, hd),
// out: (B, T, H, hd); probs: (B, H, T, T) saved (row t: softmax over positions <= t).
void attention_forward(float* out, float* probs, const float* q, const float* k, const float* v, int64_t B, int64_t T, int64_t H,
                       int64_t KVH, int64_t hd);
void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* probs, const float* q, const float* k,
                        const float* v, int64_t B, int64_t T, int64_t H, int64_t KVH, int64_t hd);

// out: (n) = silu(gate) · up.
void swiglu_forward(float* out, const float* gate, const float* up, int64_t n);
void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up, int64_t n);

// Mean cross-entropy of logits: (N, V) against targets: (N); probs: (N, V) saved. The
// backward writes (not adds) dlogits = (probs − onehot) · dloss / N.
float crossentropy_forward(float* probs, const float* logits, const int32_t* targets, int64_t N, int64_t V);
void crossentropy_backward(float* dlogits, const float* probs, const int32_t* targets, int64_t N, int64_t V, float dloss);

// Distillation: the mean KL(teacher ‖ model) = Σ p_t (log p_t − log p_model) / N of logits:
// (N, V) against the teacher's logits: (N, V), which become the teacher's probabilities in
// place; probs: (N, V) saved. The backward writes dlogits = (probs − p_t) · dloss / N.
float distill_forward(float* probs, float* teacher, const float* logits, int64_t N, int64_t V);
void distill_backward(float* dlogits, const float* probs, const float* teacher, int64_t N, int64_t V, float dloss);

}  // namespace lowbit::train
