// AWQ (Lin et al. 2023, "AWQ: Activation-aware Weight Quantization for LLM Compression and
// Acceleration"), following llm-awq's auto_scale.py / auto_clip.py and AutoAWQ's
// quantizer.py (../shared/docs/ALGORITHMS.md):
//   1. per group of linears sharing an input, search s = mean|x|^r (r on a 20-point grid;
//      duo scaling divides by mean|w|^(1-r)) minimising the output MSE of the inspected
//      module with the members quantized as Q(W·diag(s))·diag(s)⁻¹ (eq. 4-5 of the paper);
//   2. fold the best s into what feeds the group: the RMSNorm weight (÷ s) or the previous
//      linear's output rows (÷ s: v → o, up → down), the members' input columns (× s);
//   3. clip search: per output row and storage block, the range [min, max] with each end
//      shrunk by (1 - i/20), i < 10, minimising the block's output MSE on 512 sampled
//      tokens (llm-awq shrinks ±max|w| and skips q and k; docs/METHODS.md has the numbers);
//      formats that search their own ranges with importance (k-quants) skip it;
//   4. round the result into the target format: RTN (with the Σx² of the group's inputs as
//      importance where the format takes one), or GPTQ with option gptq=true.
// The next block's inputs come from the quantized block (the driver is sequential; llm-awq
// takes them from the float block). The scale search runs on the float block, as both
// references do, before any member is quantized.
#include <algorithm>
#include <cmath>
#include <map>

#include "lowbit/engine.h"
#include "lowbit/error.h"
#include "quant/methods/awq_method.h"
#include "quant/methods/fold_scales.h"
#include "quant/methods/gptq_method.h"

namespace lowbit {
namespace {

std::vector<float> fake_quantize(const Format& f, const std::vector<float>& w, int64_t rows, int64_t cols) {
  return dequantize_tensor(f, quantize_tensor(f, w, rows, cols), rows, cols);
}

// Inputs of every group of the float block, all samples: [group] (tokens, cols).
struct GroupInputs {
  std::vector<std::vector<float>> x;
  std::vector<int64_t> cols;
  int64_t tokens = 0;
};

class AwqMethod final : public CalibratedMethod {
 public:
  void prepare_block(int64_t, const ArchLayout& layout, LayerWeights& work, BlockProbe& probe,
                     const std::function<const Format*(const Weight&)>& format_of, const MethodConfig& config) override {
    const int grid = static_cast<int>(method_option_number(config, "grid"));
    const bool duo = method_option_flag(config, "duo");
    const bool clip = method_option_flag(config, "clip");
    const bool clip_qk = method_option_flag(config, "clip-qk");
    if (grid < 1) throw Error("AWQ: grid must be >= 1");
    GroupInputs in = capture(layout, work, probe);
    for (size_t g = 0; g < layout.groups.size(); ++g) {
      const LinearGroup& group = layout.groups[g];
      if (!can_scale(group, work)) continue;
      const auto s = search_scale(layout, static_cast<int>(g), work, probe, in, format_of, grid, duo);
      fold_input_scales(group, work, s);
      // The group's stored inputs now arrive divided by s (as AutoAWQ scales its input_feat).
      auto& x = in.x[g];
      const int64_t cols = in.cols[g];
      for (int64_t t = 0; t < in.tokens; ++t) {
        for (int64_t j = 0; j < cols; ++j) x[t * cols + j] /= s[j];
      }
    }
    if (clip) {
      for (size_t g = 0; g < layout.groups.size(); ++g) {
        for (const auto& m : layout.groups[g].members) {
          const Format& format = *format_of(work.*m.weight);
          // A format that searches its own ranges with importance gets that instead (quantize()).
          if ((m.awq_clip || clip_qk) && !format.uses_importance) clip_weight(work.*m.weight, format, in.x[g], in.tokens);
        }
      }
    }
    use_gptq_ = method_option_flag(config, "gptq");
    if (use_gptq_) gptq_ = make_gptq_method();
  }

  void begin_group(const LinearGroup& group, int64_t cols) override {
    if (use_gptq_) gptq_->begin_group(group, cols);
    cols_ = cols;
    importance_.assign(static_cast<size_t>(cols), 0.0f);
  }
  // Σ x² per input channel of the group's inputs as they arrive now: scaled, and through the
  // block's members quantized so far (the imatrix of the scaled weights).
  void observe(const float* x, int64_t T) override {
    if (use_gptq_) gptq_->observe(x, T);
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t j = 0; j < cols_; ++j) importance_[j] += x[t * cols_ + j] * x[t * cols_ + j];
    }
  }
  std::vector<uint8_t> quantize(const std::string& tensor, std::vector<float> w, int64_t rows, int64_t cols,
                                const Format& format, const MethodConfig& config) override {
    if (!use_gptq_) return quantize_tensor(format, w, rows, cols, format.uses_importance ? importance_.data() : nullptr);
    MethodConfig g{"gptq", {}};
    for (const char* k : {"damp", "act-order"}) {
      if (config.options.count(k)) g.options[k] = config.options.at(k);
    }
    return gptq_->quantize(tensor, std::move(w), rows, cols, format, g);
  }

 private:
  bool use_gptq_ = false;
  std::unique_ptr<CalibratedMethod> gptq_;
  int64_t cols_ = 0;
  std::vector<float> importance_;  // (cols) Σ x² of the current group's observed inputs

  static GroupInputs capture(const ArchLayout& layout, const LayerWeights& work, BlockProbe& probe) {
    GroupInputs in;
    in.x.resize(layout.groups.size());
    in.cols.resize(layout.groups.size());
    for (size_t g = 0; g < layout.groups.size(); ++g) {
      probe.group_inputs(work, static_cast<int>(g), [&](int64_t, const float* x, int64_t T, int64_t cols) {
        in.x[g].insert(in.x[g].end(), x, x + T * cols);
        in.cols[g] = cols;
        if (g == 0) in.tokens += T;
      });
    }
    return in;
  }

  // A group can be scaled when what feeds it can absorb 1/s: a norm, or a linear whose
  // output rows are the group's input channels (not v → o under GQA: v has fewer rows).
  static bool can_scale(const LinearGroup& group, const LayerWeights& work) {
    if (group.fed_by_norm) return true;
    if (!group.fed_by_linear) return false;
    return (work.*group.fed_by_linear).rows == (work.*group.members.front().weight).cols;
  }

  // The inspected module's output for all samples under weights w: (tokens, out).
  static std::vector<float> module_output(const ArchLayout& layout, int g, const LayerWeights& w, BlockProbe& probe,
                                          const GroupInputs& in) {
    const LinearGroup& group = layout.groups[g];
    std::vector<float> out;
    auto project = [&](const Weight& weight, const float* x, int64_t T) {
      const size_t at = out.size();
      out.resize(at + T * weight.rows);
      matmul(weight, x, T, out.data() + at);
    };
    switch (group.inspect) {
      case InspectedModule::kLinear: {
        // The members' outputs on the stored inputs, concatenated.
        for (const auto& m : group.members) project(w.*m.weight, in.x[g].data(), in.tokens);
        break;
      }
      case InspectedModule::kAttention:
      case InspectedModule::kMlp: {
        // Run to the next group's input (attention output / SwiGLU output), then its linear.
        const LinearGroup& next = layout.groups.at(g + 1);
        probe.group_inputs(w, g + 1, [&](int64_t, const float* x, int64_t T, int64_t) {
          project(w.*next.members.front().weight, x, T);
        });
        break;
      }
    }
    return out;
  }

  static std::vector<float> search_scale(const ArchLayout& layout, int g, const LayerWeights& work, BlockProbe& probe,
                                         const GroupInputs& in, const std::function<const Format*(const Weight&)>& format_of,
                                         int grid, bool duo) {
    const LinearGroup& group = layout.groups[g];
    const int64_t cols = in.cols[g];
    // x_mean[j] = mean |x_j| over the calibration tokens.
    std::vector<double> x_mean(cols, 0.0);
    for (int64_t t = 0; t < in.tokens; ++t) {
      for (int64_t j = 0; j < cols; ++j) x_mean[j] += std::fabs(in.x[g][t * cols + j]);
    }
    for (auto& v : x_mean) v /= static_cast<double>(in.tokens);
    // w_mean[j] (duo scaling): mean over rows of |w| / max|w| of its storage block.
    std::vector<double> w_mean(cols, 0.0);
    std::vector<std::vector<float>> w_float;
    int64_t all_rows = 0;
    for (const auto& m : group.members) {
      const Weight& w = work.*m.weight;
      w_float.push_back(w.to_f32());
      const Format& f = *format_of(w);
      const int64_t block = f.block_size == kPerRow ? cols : f.block_size;
      const auto& v = w_float.back();
      for (int64_t r = 0; r < w.rows; ++r) {
        for (int64_t b0 = 0; b0 < cols; b0 += block) {
          float mx = 0;
          for (int64_t j = b0; j < b0 + block; ++j) mx = std::max(mx, std::fabs(v[r * cols + j]));
          for (int64_t j = b0; j < b0 + block; ++j) w_mean[j] += mx > 0 ? std::fabs(v[r * cols + j]) / mx : 0.0;
        }
      }
      all_rows += w.rows;
    }
    for (auto& v : w_mean) v /= static_cast<double>(all_rows);

    const std::vector<float> reference = module_output(layout, g, work, probe, in);
    double best_error = INFINITY;
    std::vector<float> best(cols, 1.0f), s(cols);
    for (int i = 0; i < grid; ++i) {
      const double ratio = static_cast<double>(i) / grid;
      double smax = 0, smin = INFINITY;
      for (int64_t j = 0; j < cols; ++j) {
        double v = std::pow(x_mean[j], ratio);
        if (duo) v /= std::pow(w_mean[j], 1 - ratio) + 1e-4;
        s[j] = static_cast<float>(std::max(v, 1e-4));
        smax = std::max(smax, static_cast<double>(s[j]));
        smin = std::min(smin, static_cast<double>(s[j]));
      }
      const float norm = static_cast<float>(std::sqrt(smax * smin));
      for (auto& v : s) v /= norm;
      // Members as Q(W·diag(s))·diag(s)⁻¹; everything else as it is.
      LayerWeights trial = work;
      for (size_t k = 0; k < group.members.size(); ++k) {
        const Weight& w = work.*group.members[k].weight;
        std::vector<float> scaled = w_float[k];
        for (int64_t r = 0; r < w.rows; ++r) {
          for (int64_t j = 0; j < cols; ++j) scaled[r * cols + j] *= s[j];
        }
        std::vector<float> q = fake_quantize(*format_of(w), scaled, w.rows, cols);
        for (int64_t r = 0; r < w.rows; ++r) {
          for (int64_t j = 0; j < cols; ++j) q[r * cols + j] /= s[j];
        }
        trial.*group.members[k].weight = make_f32_weight(w, q);
      }
      const std::vector<float> out = module_output(layout, g, trial, probe, in);
      double error = 0;
      for (size_t k = 0; k < out.size(); ++k) error += static_cast<double>(out[k] - reference[k]) * (out[k] - reference[k]);
      error /= static_cast<double>(out.size());
      if (error < best_error) {
        best_error = error;
        best = s;
      }
    }
    return best;
  }



  // Per row and storage block, clamp to [lo·(1 - a/20), hi·(1 - b/20)] (lo, hi: the block's
  // min and max; a, b < 10) minimising the block's output MSE on up to 512 evenly sampled
  // tokens. llm-awq shrinks ±max|w| together (a = b on a symmetric range); lowbit first
  // sweeps a = b, then a with b fixed, then b with a fixed, which finds the lopsided ranges
  // an asymmetric grid wants (docs/METHODS.md: 23% lower KLD than RTN at int3_g64 instead
  // of 16%). The error of a block change d is Σ_t (x_t·d)² = dᵀ G d with G the Gram matrix
  // of the sampled inputs of that block (shared by all rows), cheaper than the token sum
  // for blocks up to 256.
  static void clip_weight(Weight& weight, const Format& format, const std::vector<float>& x_all, int64_t tokens) {
    constexpr int kSteps = 10;        // shrink by 0 .. 45% (llm-awq: max_shrink 0.5, n_grid 20)
    constexpr float kStep = 1.0f / 20;
    const int64_t rows = weight.rows, cols = weight.cols;
    const int64_t block = format.block_size == kPerRow ? cols : format.block_size;
    const int64_t step = std::max<int64_t>(1, tokens / 512);
    std::vector<int64_t> picked;
    for (int64_t t = 0; t < tokens && static_cast<int64_t>(picked.size()) < 512; t += step) picked.push_back(t);
    const bool gram = block <= 256;
    std::vector<float> w = weight.to_f32();
    std::vector<double> G;
    for (int64_t b0 = 0; b0 < cols; b0 += block) {
      if (gram) {
        G.assign(static_cast<size_t>(block * block), 0.0);
        for (int64_t t : picked) {
          const float* xt = x_all.data() + t * cols + b0;
          for (int64_t i = 0; i < block; ++i) {
            for (int64_t j = 0; j < block; ++j) G[i * block + j] += static_cast<double>(xt[i]) * xt[j];
          }
        }
      }
#pragma omp parallel for schedule(dynamic)
      for (int64_t r = 0; r < rows; ++r) {
        float* wb = w.data() + r * cols + b0;
        std::vector<float> cand(block), q;
        std::vector<double> d(block);
        // Output error of the block clamped to [lo·(1 - a·kStep), hi·(1 - b·kStep)].
        const auto [lo, hi] = std::minmax_element(wb, wb + block);
        const float lo0 = *lo, hi0 = *hi;
        if (lo0 == 0 && hi0 == 0) continue;
        auto error = [&](int a, int b) {
          const float l = lo0 * (1 - a * kStep), h = hi0 * (1 - b * kStep);
          for (int64_t j = 0; j < block; ++j) cand[j] = std::clamp(wb[j], l, h);
          q = dequantize_tensor(format, quantize_tensor(format, cand, 1, block), 1, block);
          for (int64_t j = 0; j < block; ++j) d[j] = static_cast<double>(wb[j]) - q[j];
          double err = 0;
          if (gram) {
            for (int64_t i = 0; i < block; ++i) {
              double row = 0;
              for (int64_t j = 0; j < block; ++j) row += G[i * block + j] * d[j];
              err += d[i] * row;
            }
          } else {
            for (int64_t t : picked) {
              const float* xt = x_all.data() + t * cols + b0;
              double o = 0;
              for (int64_t j = 0; j < block; ++j) o += xt[j] * d[j];
              err += o * o;
            }
          }
          return err;
        };
        int best_a = 0, best_b = 0;
        double best = error(0, 0);
        auto consider = [&](int a, int b) {
          const double e = error(a, b);
          if (e < best) best = e, best_a = a, best_b = b;
        };
        for (int i = 1; i < kSteps; ++i) consider(i, i);
        const int diag = best_a;
        for (int a = 0; a < kSteps; ++a) {
          if (a != diag) consider(a, diag);
        }
        const int a = best_a;
        for (int b = 0; b < kSteps; ++b) {
          if (b != diag) consider(a, b);
        }
        const float l = lo0 * (1 - best_a * kStep), h = hi0 * (1 - best_b * kStep);
        for (int64_t j = 0; j < block; ++j) wb[j] = std::clamp(wb[j], l, h);
      }
    }
    weight = make_f32_weight(weight, w);
  }
};

}  // namespace

std::unique_ptr<CalibratedMethod> make_awq_method() { return std::make_unique<AwqMethod>(); }

}  // namespace lowbit
