// A Llama-family model in memory: configuration, weights (each in any format of the
// table, usually pointing into a mapped file) and its tokenizer. Tensor names are GGUF's
// ("blk.3.attn_q.weight"). Not the forward pass (engine.h) and not the file readers.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "lowbit/format.h"
#include "lowbit/tokenizer.h"

namespace lowbit {

// How RoPE pairs the dimensions of a head: llama2.c/GGUF rotate (x[2i], x[2i+1]);
// Hugging Face rotates (x[i], x[i + head_dim/2]).
enum class RopeStyle { kAdjacentPairs, kRotateHalf };

// RoPE frequency scaling (Hugging Face rope_scaling): none, linear (every frequency / factor),
// llama3 (long wavelengths / factor, short ones kept, a smooth blend between), per-frequency
// divisors as GGUF stores llama3 scaling (rope_freqs.weight), or YaRN (frequencies that
// turn fewer than beta_slow times over the original context / factor, more than beta_fast
// times kept, a linear ramp between; cos and sin times attention_factor).
enum class RopeScalingType { kNone, kLinear, kLlama3, kFreqFactors, kYarn };
struct RopeScaling {
  RopeScalingType type = RopeScalingType::kNone;
  float factor = 1.0f;
  float low_freq_factor = 1.0f, high_freq_factor = 4.0f;  // llama3
  int64_t original_context = 0;     // llama3, yarn: original_max_position_embeddings
  std::vector<float> freq_factors;  // kFreqFactors: (head_dim / 2), frequency i is divided by [i]
  float beta_fast = 32.0f, beta_slow = 1.0f;  // yarn: the ramp's ends, in rotations
  float attention_factor = 0.0f;    // yarn: cos/sin scale; 0: 0.1 ln(factor) + 1
};

// Which attention projections carry biases.
enum class BiasSet { kNone, kQkv, kQkvo };

struct ModelConfig {
  std::string architecture = "llama";  // a row of the architecture table (arch.h): llama, mistral, qwen2, qwen3
  int64_t dim = 0;             // embedding width
  int64_t hidden_dim = 0;      // feed-forward width
  int64_t n_layers = 0;
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;
  int64_t vocab_size = 0;
  int64_t context_length = 0;  // trained context
  float rope_theta = 10000.0f;
  float norm_eps = 1e-5f;
  RopeStyle rope_style = RopeStyle::kAdjacentPairs;
  bool tied_output = false;    // the output matrix is the token embedding

  BiasSet attention_bias = BiasSet::kNone;
  bool qk_norm = false;            // per-head RMSNorm of q and k before RoPE (Qwen 3)
  int64_t head_dim_override = 0;  // head_dim given by the config (Qwen 3), when not dim / n_heads
  RopeScaling rope_scaling;
  // Mistral: each token attends to itself and the sliding_window - 1 tokens before it
  // (0: the whole context).
  int64_t sliding_window = 0;

  int64_t head_dim() const { return head_dim_override > 0 ? head_dim_override : dim / n_heads; }
  int64_t q_dim() const { return n_heads * head_dim(); }   // q_proj rows, o_proj columns
  int64_t kv_dim() const { return n_kv_heads * head_dim(); }
  // Throws Error naming `source` and the field when a value is missing or inconsistent.
  void validate(const std::string& source) const;
};

// One weight: `rows` x `cols` elements (a vector has rows = 1) in `format`.
struct Weight {
  std::string name;
  const Format* format = nullptr;
  int64_t rows = 0, cols = 0;
  std::span<const uint8_t> data;   // tensor_bytes(rows, cols) bytes
  std::shared_ptr<const std::vector<uint8_t>> owned;  // set when data is not in a map
  // A block linear's static activation scale from calibration (compressed-tensors'
  // input_scale): its input runs as q · input_scale, q = round(x / input_scale) clamped
  // to the activation format's range. 0: none.
  float input_scale = 0;

  int64_t numel() const { return rows * cols; }
  std::vector<float> to_f32() const;   // the whole tensor, dequantized
  void row_to_f32(int64_t r, float* out) const;  // one row (out: cols)
};

struct LayerWeights {
  Weight attn_norm, attn_q, attn_k, attn_v, attn_output;
  Weight ffn_norm, ffn_gate, ffn_up, ffn_down;
  // Present only where the architecture has them (format == nullptr otherwise):
  Weight attn_q_bias, attn_k_bias, attn_v_bias;  // (1, q_dim / kv_dim): Qwen 2 / 2.5, attention_bias
  Weight attn_output_bias;                       // (1, dim): attention_bias (Llama, Qwen 3)
  Weight attn_q_norm, attn_k_norm;               // (1, head_dim): Qwen 3, RMSNorm of each head
};

// How a checkpoint says its block linears' inputs run (compressed-tensors'
// input_activations, lowbit's quantization_config.activations): an --act mode ("none",
// "int8", "llm_int8", "fp8_e4m3", "fp8_e5m2"), per token or with the static per-tensor
// scales of its linears, and LLM.int8()'s threshold.
struct ActivationScheme {
  std::string act = "none";
  bool per_tensor = false;
  float threshold = 6.0f;
};

struct Model {
  ModelConfig config;
  Weight token_embd;       // (vocab, dim)
  std::vector<LayerWeights> layers;
  Weight output_norm;      // (1, dim)
  Weight output;           // (vocab, dim); same data as token_embd when tied
  std::shared_ptr<Tokenizer> tokenizer;
  std::string source;      // the path it was read from
  std::vector<std::string> files;  // every file read for it (weights, config, tokenizer)
  std::string quant_method;  // a quantized checkpoint's quant_method (gptq, awq, ...), else ""
  ActivationScheme activations;  // as the checkpoint records it (run-time --act overrides)
  std::vector<std::shared_ptr<const void>> keep_alive;  // mapped files behind the weights

  // Every weight in GGUF order: token_embd, blk.N.*, output_norm, output (unless tied).
  std::vector<const Weight*> weights() const;
  uint64_t weight_bytes() const;
  int64_t parameter_count() const;
};

// The divisor of each RoPE frequency (head_dim / 2 of them) under `scaling`: `factor`
// for linear; for llama3 1, `factor`, or 1 / ((1 - smooth) / factor + smooth) by
// wavelength (what llama.cpp's converter stores as rope_freqs.weight); for YaRN
// 1 / (ramp / factor + 1 - ramp) with ramp 0 below the beta_fast pair and 1 above the
// beta_slow one; the stored ones for kFreqFactors; empty for none.
std::vector<float> rope_freq_divisors(const RopeScaling& scaling, int64_t head_dim, float theta);
// YaRN's cos/sin scale: attention_factor, or 0.1 ln(factor) + 1 (1 for factor <= 1).
float yarn_attention_factor(const RopeScaling& r);

// GGUF tensor names, in one place.
std::string layer_tensor_name(int64_t layer, const char* what);  // "blk.3.attn_q.weight"; "attn_q.bias" as given

}  // namespace lowbit
