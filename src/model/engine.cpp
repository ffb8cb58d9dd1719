// The Llama forward pass: embed → block × n_layers → head, from the layer functions.
// x: (T, dim) activations of the T tokens being run.
#include "lowbit/engine.h"

#include <cmath>
#include <cstring>

#include "lowbit/error.h"
#include "lowbit/kernels.h"
#include "lowbit/mapped_file.h"
#include "model/kv_cache.h"
#include "model/layers.h"

namespace lowbit {
namespace {

// Group indices of the Llama layout, in forward order (checked against the table below).
enum Group { kAttnIn = 0, kAttnOutIn = 1, kFfnIn = 2, kFfnDownIn = 3 };

void check_llama_layout(const ArchLayout& l) {
  static const char* kNames[] = {"attn_in", "attn_out_in", "ffn_in", "ffn_down_in"};
  if (l.groups.size() != 4) throw Error("the engine runs Llama-layout blocks", {.value = l.architecture});
  for (int g = 0; g < 4; ++g) {
    if (std::string(l.groups[g].name) != kNames[g]) throw Error("the engine runs Llama-layout blocks", {.value = l.groups[g].name});
  }
}

}  // namespace

void check_chunk_tokens(const Model& model, int64_t n_ctx) {
  if (n_ctx < kMinChunkTokens || n_ctx > model.config.context_length) {
    throw Error("-c (tokens per chunk) must be between " + std::to_string(kMinChunkTokens) + " and the model's context of " +
                    std::to_string(model.config.context_length),
                {.file = model.source, .value = std::to_string(n_ctx)});
  }
}

KvCacheOptions kv_cache_options(const std::string& name, bool rotate) {
  static const std::pair<std::string_view, std::string_view> kTypes[] = {
      {"f32", "f32"}, {"f16", "f16"}, {"bf16", "bf16"}, {"q8_0", "q8_0"}, {"q4_0", "q4_0"},
      {"int8", "int8_pc_sym"}, {"fp8_e4m3", "fp8_e4m3"}, {"fp8_e5m2", "fp8_e5m2"}};
  for (const auto& [type, format] : kTypes) {
    if (name == type) return {&format_by_name(format), rotate};
  }
  throw Error("unknown KV cache type (f32, f16, bf16, q8_0, q4_0, int8, fp8_e4m3, fp8_e5m2)", {.value = name});
}

Engine::Engine(const Model& model, int64_t max_context, const KvCacheOptions& kv)
    : model_(model), layout_(arch_layout(model.config.architecture)), max_context_(max_context) {
  const auto& c = model.config;
  if (max_context <= 0) throw Error("context length must be positive", {.value = std::to_string(max_context)});
  check_llama_layout(layout_);
  cache_ = std::make_unique<KvCache>(c.n_layers, max_context, c.n_kv_heads, c.head_dim(), kv);
  rope_ = std::make_unique<RopeTable>(max_context, c.head_dim(), c.rope_theta, c.rope_scaling);
  set_repacking(true);
}

uint64_t Engine::kv_bytes_per_token() const { return cache_->bytes_per_token(); }

void Engine::set_repacking(bool on) {
  repacked_.clear();
  if (!on) return;
  for (const LayerWeights& l : model_.layers) {
    for (const Weight* w : {&l.attn_q, &l.attn_k, &l.attn_v, &l.attn_output, &l.ffn_gate, &l.ffn_up, &l.ffn_down}) {
      repacked_[w];
    }
  }
  repacked_[&model_.output];
}

Engine::~Engine() = default;

const IsaKernels& Engine::kernel_set() const { return reference_kernels_ ? ref_kernels() : active_isa(); }

void Engine::embed(std::span<const int32_t> tokens, float* x) const {
  const auto& c = model_.config;
  for (size_t t = 0; t < tokens.size(); ++t) {
    if (tokens[t] < 0 || tokens[t] >= c.vocab_size) throw Error("token id out of range", {.value = std::to_string(tokens[t])});
    model_.token_embd.row_to_f32(tokens[t], x + t * c.dim);
  }
}

bool Engine::observe(int g, const LayerWeights& w, int64_t layer, const float* x, int64_t T, int stop_after_group) {
  if (observer_) {
    const LinearGroup& group = layout_.groups[g];
    const Weight* weights[4];
    size_t n = 0;
    for (const auto& m : group.members) weights[n++] = &(w.*m.weight);
    observer_({layer, group, std::span<const Weight* const>(weights, n), x, T, weights[0]->cols});
  }
  return g == stop_after_group;
}

namespace {

// x: (n) += bias: (1, n), the same bias for each of the T rows.
void add_bias(float* x, const Weight& bias, int64_t T) {
  if (bias.format == nullptr) return;
  const std::vector<float> b = bias.to_f32();
  for (int64_t t = 0; t < T; ++t) add_residual(x + t * bias.cols, b.data(), bias.cols);
}

// v: (T, heads * head_dim), each head RMS-normalized with `norm`'s (head_dim) weights (Qwen 3's
// q_norm / k_norm). scratch: (T * heads * head_dim).
void head_rmsnorm(float* v, const Weight& norm, int64_t rows, int64_t head_dim, float eps, std::vector<float>& scratch, const IsaKernels& isa) {
  if (norm.format == nullptr) return;
  scratch.resize(static_cast<size_t>(rows * head_dim));
  rmsnorm(v, norm.to_f32().data(), rows, head_dim, eps, scratch.data(), isa);
  std::copy(scratch.begin(), scratch.end(), v);
}

}  // namespace

void Engine::block(const LayerWeights& w, int64_t l, float* x, int64_t T, int64_t pos, int stop_after_group) {
  const auto& c = model_.config;
  const int64_t dim = c.dim, q_dim = c.q_dim(), kv_dim = c.kv_dim(), hidden = c.hidden_dim, hd = c.head_dim();
  Scratch& s = scratch_;
  s.xb.resize(T * std::max(dim, q_dim));
  s.q.resize(T * q_dim);
  s.k.resize(T * kv_dim);
  s.v.resize(T * kv_dim);
  s.att.resize(T * q_dim);
  s.gate.resize(T * hidden);
  s.up.resize(T * hidden);
  // Attention: x += o(attention(rope(norm(q + bq)), rope(norm(k + bk)), v + bv)) of rmsnorm(x).
  const IsaKernels& isa = kernel_set();
  rmsnorm(x, w.attn_norm.to_f32().data(), T, dim, c.norm_eps, s.xb.data(), isa);
  if (observe(kAttnIn, w, l, s.xb.data(), T, stop_after_group)) return;
  block_linear(w.attn_q, s.xb.data(), T, s.q.data());
  block_linear(w.attn_k, s.xb.data(), T, s.k.data());
  block_linear(w.attn_v, s.xb.data(), T, s.v.data());
  add_bias(s.q.data(), w.attn_q_bias, T);
  add_bias(s.k.data(), w.attn_k_bias, T);
  add_bias(s.v.data(), w.attn_v_bias, T);
  head_rmsnorm(s.q.data(), w.attn_q_norm, T * c.n_heads, hd, c.norm_eps, s.head_norm, isa);
  head_rmsnorm(s.k.data(), w.attn_k_norm, T * c.n_kv_heads, hd, c.norm_eps, s.head_norm, isa);
  rope(s.q.data(), T, pos, c.n_heads, hd, c.rope_style, *rope_, isa);
  rope(s.k.data(), T, pos, c.n_kv_heads, hd, c.rope_style, *rope_, isa);
  cache_->store(l, pos, s.k.data(), s.v.data(), T);
  attention(s.q.data(), *cache_, l, T, pos, c.n_heads, c.n_kv_heads, hd, s.att.data(), isa, c.sliding_window);
  if (observe(kAttnOutIn, w, l, s.att.data(), T, stop_after_group)) return;
  block_linear(w.attn_output, s.att.data(), T, s.xb.data());
  add_bias(s.xb.data(), w.attn_output_bias, T);
  add_residual(x, s.xb.data(), T * dim);
  // Feed-forward: x += down(swiglu(gate, up)) of rmsnorm(x).
  rmsnorm(x, w.ffn_norm.to_f32().data(), T, dim, c.norm_eps, s.xb.data(), isa);
  if (observe(kFfnIn, w, l, s.xb.data(), T, stop_after_group)) return;
  block_linear(w.ffn_gate, s.xb.data(), T, s.gate.data());
  block_linear(w.ffn_up, s.xb.data(), T, s.up.data());
  swiglu(s.gate.data(), s.up.data(), T * hidden, isa.swiglu);
  if (observe(kFfnDownIn, w, l, s.gate.data(), T, stop_after_group)) return;
  block_linear(w.ffn_down, s.gate.data(), T, s.xb.data());
  add_residual(x, s.xb.data(), T * dim);
}

ActQuantOptions act_quant_options(const std::string& name, float threshold) {
  static const std::pair<std::string_view, std::string_view> kModes[] = {
      {"int8", "bnb_int8"}, {"llm_int8", "bnb_int8"}, {"fp8_e4m3", "fp8_e4m3"}, {"fp8_e5m2", "fp8_e5m2"}};
  if (name == "none") return {};
  if (name == "llm_int8" && !(threshold > 0)) throw Error("LLM.int8() threshold must be positive", {.value = std::to_string(threshold)});
  const bool per_tensor = name.ends_with("_static");
  const std::string mode = per_tensor ? name.substr(0, name.size() - 7) : name;
  for (const auto& [m, format] : kModes) {
    if (mode == m && !(per_tensor && mode == "llm_int8")) {
      return {&format_by_name(format), mode == "llm_int8" ? threshold : 0.0f, per_tensor, name};
    }
  }
  throw Error("unknown activation quantization (none, int8, llm_int8, fp8_e4m3, fp8_e5m2; int8_static, fp8_e4m3_static, "
              "fp8_e5m2_static with the model's input scales)", {.value = name.substr(0, 40)});
}

ActQuantOptions act_quant_options(const ActivationScheme& scheme) {
  if (scheme.act == "none") return {};
  return act_quant_options(scheme.act + (scheme.per_tensor ? "_static" : ""), scheme.threshold);
}

ActQuantOptions act_quant_for(const Model& model, const std::string& name, float threshold) {
  return name.empty() ? act_quant_options(model.activations) : act_quant_options(name, threshold);
}

void Engine::block_linear(const Weight& w, const float* x, int64_t T, float* y) {
  if (act_.format == nullptr) return linear(w, x, T, y);
  const Format& act = *act_.format;
  const int64_t cols = w.cols;
  // LLM.int8(): the columns over the threshold in any token leave the int8 path (zeroed
  // there) and are added back in float at the end.
  std::vector<int64_t> outliers;
  std::vector<float> inliers;
  const float* xi = x;
  if (act_.outlier_threshold > 0) {
    for (int64_t j = 0; j < cols; ++j) {
      for (int64_t t = 0; t < T; ++t) {
        if (std::fabs(x[t * cols + j]) > act_.outlier_threshold) {
          outliers.push_back(j);
          break;
        }
      }
    }
    OutlierStats& stats = outliers_[w.name];
    stats.outlier_columns += static_cast<int64_t>(outliers.size());
    stats.columns += cols;
    if (!outliers.empty()) {
      inliers.assign(x, x + T * cols);
      for (int64_t t = 0; t < T; ++t) {
        for (int64_t j : outliers) inliers[t * cols + j] = 0.0f;
      }
      xi = inliers.data();
    }
  }
  std::vector<uint8_t> xq;
  try {
    if (act_.per_tensor) {
      if (!(w.input_scale > 0) || !std::isfinite(w.input_scale)) {
        throw Error("static activations need the linear's input_scale (quantize with --act per-tensor --calib FILE, or run "
                    "--act " + std::string(act.name == std::string_view("bnb_int8") ? "int8" : act.name) + ")",
                    {.value = std::to_string(w.input_scale)});
      }
      xq = quantize_static_rows(act, xi, T, cols, w.input_scale);
    } else {
      xq = quantize_tensor(act, std::span(xi, static_cast<size_t>(T * cols)), T, cols);
    }
  } catch (const Error& e) {
    throw e.with_tensor(w.name);
  }
  const std::string_view wf = w.format->name;
  if (act.name == std::string_view("bnb_int8") && (wf == "bnb_int8" || wf == "int8_pc_sym")) {
    // W8A8: an int8 GEMM with int32 sums on the weight's panels (made once per model weight).
    auto tile = kernel_set().w8a8_tile != nullptr ? kernel_set().w8a8_tile : &w8a8_tile_ref;
    const bool own = repacked_.count(&w) != 0;  // the model's (calibration's replacements change)
    auto it = w8a8_panels_.find(&w);
    if (it == w8a8_panels_.end() || !own) {
      it = w8a8_panels_.insert_or_assign(&w, w8a8_weight_panels(w)).first;
      if (own && !w.owned) release_pages(w.data);  // the file's pages come back if LLM.int8() decodes a column
    }
    w8a8_matmul(it->second, w.rows, w.cols, xq.data(), T, y, tile);
    if (!own) w8a8_panels_.erase(it);
  } else {
    std::vector<float> rounded(static_cast<size_t>(T * cols));
    act.dequantize(xq.data(), T, cols, 0, T, rounded.data());
    linear(w, rounded.data(), T, y);
  }
  if (outliers.empty()) return;
  // y[t, r] += Σ_{j outlier} x[t, j] · w[r, j], the weights' outlier columns decoded (from
  // a bnb_int8 row directly, as bitsandbytes takes CB[:, idx] · SCB / 127), in float.
  const bool int8_rows = wf == "bnb_int8";
#pragma omp parallel if (w.rows * static_cast<int64_t>(outliers.size()) * T >= (1 << 14))
  {
    std::vector<float> row(static_cast<size_t>(int8_rows ? 0 : cols)), wj(outliers.size());
#pragma omp for schedule(static)
    for (int64_t r = 0; r < w.rows; ++r) {
      if (int8_rows) {
        const uint8_t* data = w.data.data() + r * (4 + cols);
        float scb;
        std::memcpy(&scb, data, 4);
        for (size_t k = 0; k < outliers.size(); ++k) {
          wj[k] = (static_cast<float>(static_cast<int8_t>(data[4 + outliers[k]])) * scb) * (1.0f / 127.0f);
        }
      } else {
        w.row_to_f32(r, row.data());
        for (size_t k = 0; k < outliers.size(); ++k) wj[k] = row[static_cast<size_t>(outliers[k])];
      }
      for (int64_t t = 0; t < T; ++t) {
        float acc = 0;
        for (size_t k = 0; k < outliers.size(); ++k) acc += x[t * cols + outliers[k]] * wj[k];
        y[t * w.rows + r] += acc;
      }
    }
  }
}

void Engine::linear(const Weight& w, const float* x, int64_t T, float* y) {
  if (reference_kernels_) {
    if (!reference_act_rounding_ || weight_kernels(*w.format).act != ActFormat::kQ8) return matmul_ref(w, x, T, y);
    thread_local std::vector<float> rounded;
    round_through_q8_ref(x, T, w.cols, rounded);
    return matmul_ref(w, rounded.data(), T, y);
  }
  const auto it = repacked_.find(&w);
  if (it == repacked_.end()) return matmul(w, x, T, y);
  if (it->second.empty()) {
    it->second = repack_weight(w);
    if (it->second.empty()) {  // no layout for this format: never ask again
      repacked_.erase(it);
      return matmul(w, x, T, y);
    }
    if (!w.owned) release_pages(w.data);
  }
  if (it->second.twin) return matmul(*it->second.twin, x, T, y);
  matmul_repacked(w, it->second, x, T, y);
}

void Engine::head(const float* x, int64_t T, float* logits) {
  const auto& c = model_.config;
  std::vector<float> xb(T * c.dim);
  rmsnorm(x, model_.output_norm.to_f32().data(), T, c.dim, c.norm_eps, xb.data(), kernel_set());
  linear(model_.output, xb.data(), T, logits);
}

void Engine::forward(std::span<const int32_t> tokens, int64_t pos, float* logits, bool all_logits) {
  const auto& c = model_.config;
  const int64_t T = static_cast<int64_t>(tokens.size());
  if (T == 0) return;
  if (pos < 0 || pos + T > max_context_) {
    throw Error("positions exceed the context", {.value = std::to_string(pos + T) + " > " + std::to_string(max_context_)});
  }
  std::vector<float> x(T * c.dim);
  embed(tokens, x.data());
  for (int64_t l = 0; l < c.n_layers; ++l) block(model_.layers[l], l, x.data(), T, pos);
  if (logits == nullptr) return;
  const int64_t first = all_logits ? 0 : T - 1;
  head(x.data() + first * c.dim, T - first, logits);
}

}  // namespace lowbit
