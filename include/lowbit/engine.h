// The inference engine: a Llama forward pass over weights in any format of the table, as
// embed → block(l) × n_layers → head, each stage built from the layer functions of
// src/model/layers.h. A KV cache, batched prefill (BLAS GEMM for T >= 8 tokens) and
// OpenMP threads. Calibration watches the inputs of the linear layers through an
// observer and may run single blocks with replacement weights.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <span>
#include <unordered_map>
#include <vector>

#include "lowbit/arch.h"
#include "lowbit/model.h"

namespace lowbit {

class KvCache;
struct RopeTable;
struct RepackKernels;

// A weight in its kernel set's interleaved layout (RepackKernels in kernels.h), made once
// from the file's bytes; kernels is null when the active set has no layout for the format.
// Or, for a format with a row-local twin (Format::row_local_twin), the weight converted to
// that format, which the kernels then run.
struct RepackedWeight {
  const RepackKernels* kernels = nullptr;
  std::vector<uint8_t> bytes;
  std::shared_ptr<const Weight> twin;
  bool empty() const { return kernels == nullptr && twin == nullptr; }
};

// The input of one group of linears that share it (q, k and v read one input): seen once.
struct ObservedInput {
  int64_t layer;
  const LinearGroup& group;
  std::span<const Weight* const> weights;  // the group's linears in this layer
  const float* x;                          // (T, cols)
  int64_t T, cols;
};
using InputObserver = std::function<void(const ObservedInput&)>;

// How the KV cache stores its rows (one position of one KV head): f32 (format null), or a
// format of the table whose blocks fit the head size; rotate: an orthonormal Hadamard
// transform of each row before rounding, undone after decoding (blocks of the largest
// power of two that divides the head size).
struct KvCacheOptions {
  const Format* format = nullptr;
  bool rotate = false;
};
// --kv-cache NAME: f32, f16, bf16, q8_0, q4_0, int8 (int8_pc_sym: one scale per row),
// fp8_e4m3, fp8_e5m2 (one fp32 scale per row). Throws Error naming the known types.
KvCacheOptions kv_cache_options(const std::string& name, bool rotate);

// Quantized activations: the input of every block linear is rounded per token into a row
// format of the table: bnb_int8 (int8 with one absmax per token: W8A8's dynamic
// activations), fp8_e4m3 or fp8_e5m2 (FP8 with one scale per token, vLLM's "fp8 dynamic").
// per_tensor: each linear's static input_scale (from calibration) replaces the per-token
// scale, and values beyond its range clamp (compressed-tensors' static activations).
// With int8 activations and int8 per-channel weights (bnb_int8, int8_pc_sym) a linear is
// an int8 GEMM with int32 sums (IsaKernels::w8a8_tile); with other weights the rounded
// activations go through the weights' own kernels. The output matrix keeps float inputs.
// LLM.int8() (outlier_threshold > 0, with int8 activations): the input columns whose
// magnitude exceeds the threshold in any token of the call stay float and meet the
// weights' decoded columns in float; the rest go through the int8 path; the two are added
// (bitsandbytes' mixed-precision decomposition).
struct ActQuantOptions {
  const Format* format = nullptr;  // null: float activations
  float outlier_threshold = 0;     // > 0: LLM.int8() decomposition (int8 only)
  bool per_tensor = false;         // static scales: Weight::input_scale
  std::string name = "none";       // as given to act_quant_options
};
// --act NAME: none, int8, llm_int8 (threshold 6.0 unless given), fp8_e4m3, fp8_e5m2; with
// the suffix "_static" (int8_static, fp8_e4m3_static, fp8_e5m2_static) the per-tensor
// static scales. Throws Error naming the known names.
ActQuantOptions act_quant_options(const std::string& name, float threshold = 6.0f);
// The scheme a model records (Model::activations), as options.
ActQuantOptions act_quant_options(const ActivationScheme& scheme);
// --act as a command takes it: "" is the model's recorded scheme, else the name given.
ActQuantOptions act_quant_for(const Model& model, const std::string& name, float threshold = 6.0f);

// Per block linear, how many input columns LLM.int8() kept in float, over all calls.
struct OutlierStats {
  int64_t outlier_columns = 0, columns = 0;  // summed over calls
};

class Engine {
 public:
  Engine(const Model& model, int64_t max_context, const KvCacheOptions& kv = {});
  void set_activation_quant(const ActQuantOptions& act) { act_ = act; }
  // LLM.int8(): by tensor name, the outlier columns seen so far.
  const std::map<std::string, OutlierStats>& outlier_stats() const { return outliers_; }
  // Bytes the KV cache holds per position (all layers, keys and values).
  uint64_t kv_bytes_per_token() const;
  ~Engine();
  // Sees every linear input of the blocks (not the output matrix's, as in llama.cpp's imatrix).
  void set_observer(InputObserver observer) { observer_ = std::move(observer); }
  // Runs every linear through matmul_ref (weights decoded to fp32, fp32 activations): the
  // oracle the fast kernels are held against, and a way to compare two layouts of the same
  // weights without the int8 activation rounding in between.
  void use_reference_kernels(bool on) { reference_kernels_ = on; }
  // With the reference kernels: rounds the input of every linear whose fast kernel takes
  // int8 activations (ActFormat::kQ8) through that rounding first, in scalar code. The
  // reference then computes the fast path's function, and the two differ by float
  // summation order only.
  void use_reference_act_rounding(bool on) { reference_act_rounding_ = on; }
  // Whether the model's linears are repacked for the kernel set (on by default). Layer-wise
  // calibration turns it off: it keeps one block in memory, not a repacked model.
  void set_repacking(bool on);

  // Runs `tokens` at positions [pos, pos + n) against the cache of positions [0, pos).
  // logits: (n, vocab) when all_logits, else (1, vocab) for the last token; may be null.
  void forward(std::span<const int32_t> tokens, int64_t pos, float* logits, bool all_logits = true);

  // The stages of forward; x: (T, dim), owned by the caller.
  void embed(std::span<const int32_t> tokens, float* x) const;
  // Block `layer` with weights `w` (the model's or replacements) on x in place, tokens at
  // positions [pos, pos + T). With stop_after_group = g >= 0 it returns as soon as the input
  // of group g (arch_layout order) has been observed, leaving x unspecified.
  void block(const LayerWeights& w, int64_t layer, float* x, int64_t T, int64_t pos, int stop_after_group = -1);
  // logits: (T, vocab) = output(rmsnorm(x: (T, dim)))
  void head(const float* x, int64_t T, float* logits);

  const Model& model() const { return model_; }
  const ArchLayout& layout() const { return layout_; }
  int64_t max_context() const { return max_context_; }

 private:
  struct Scratch {  // per-block buffers for T tokens
    std::vector<float> xb, q, k, v, att, gate, up, head_norm;
  };
  const Model& model_;
  const ArchLayout& layout_;
  int64_t max_context_;
  std::unique_ptr<KvCache> cache_;
  std::unique_ptr<RopeTable> rope_;
  Scratch scratch_;
  InputObserver observer_;
  bool reference_kernels_ = false;
  ActQuantOptions act_;
  std::map<std::string, OutlierStats> outliers_;
  bool reference_act_rounding_ = false;
  // The scalar set under use_reference_kernels, else the CPU's.
  const struct IsaKernels& kernel_set() const;
  // The model's own linears (not calibration's replacement weights) are repacked on first
  // use when the kernel set has an interleaved layout for their format; the file's pages
  // behind a repacked weight are then released.
  std::unordered_map<const Weight*, RepackedWeight> repacked_;
  // W8A8 panels of the model's int8 per-channel linears (w8a8_weight_panels), made on first use.
  std::unordered_map<const Weight*, std::vector<uint8_t>> w8a8_panels_;

  // y: (T, w.rows) = x: (T, w.cols) · wᵀ with the fast or the reference kernels.
  void linear(const Weight& w, const float* x, int64_t T, float* y);
  // linear() of a block linear, its input rounded as act_ says first.
  void block_linear(const Weight& w, const float* x, int64_t T, float* y);

  // Shows the input of group g of `layer` to the observer; true when the block stops here.
  bool observe(int g, const LayerWeights& w, int64_t layer, const float* x, int64_t T, int stop_after_group);
};

// y: (T, w.rows) = x: (T, w.cols) · wᵀ, w in any format.
void matmul(const Weight& w, const float* x, int64_t T, float* y);

// The repacked layout, or the row-local twin, of w; empty when there is neither.
RepackedWeight repack_weight(const Weight& w);
// matmul on the repacked layout (same result as matmul's int8 path, up to summation order).
void matmul_repacked(const Weight& w, const RepackedWeight& packed, const float* x, int64_t T, float* y);

// Chunked evaluations (perplexity, imatrix) need chunks of at least kMinChunkTokens and at
// most the model's trained context. Throws Error naming the option (-c) and both limits.
inline constexpr int64_t kMinChunkTokens = 4;
void check_chunk_tokens(const Model& model, int64_t n_ctx);

}  // namespace lowbit
