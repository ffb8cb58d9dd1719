// The float model's run over calibration windows, kept to measure quantized variants of it
// against (lowbit sensitivity, and the measured branching of quantize --branch): every block's
// input, the log-probabilities, each linear input's Σx², and the rounding of a matrix into
// a candidate format as `quantize` would round it.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "lowbit/arch.h"
#include "lowbit/calibration.h"
#include "lowbit/engine.h"
#include "lowbit/format.h"
#include "lowbit/model.h"

namespace lowbit {

// Where a block linear sits: its layer, member and group (arch_layout).
struct LinearSlot {
  int64_t layer;
  LayerWeight member;
  std::string group;
};

// "blk.N.*" → N; -1 for token_embd and output.
int64_t layer_of_name(const std::string& name);

// Row-wise log-softmax of logits: (T, V), in place.
void log_softmax_rows(float* logits, int64_t T, int64_t V);
// Σ_t KL(p ‖ q) of two (T, V) log-probability rows.
double kl_sum(const float* logp, const float* logq, int64_t T, int64_t V);

// The formats to try on a tensor of `cols` columns: each asked format, or the first of its
// fallbacks that fits (as a recipe would fall back), each once.
std::vector<const Format*> candidate_formats(const std::vector<std::string>& formats, int64_t cols);

class FloatRun {
 public:
  // The float pass over cs (the engine works on windows of cs's length).
  FloatRun(const Model& m, const CalibrationSet& cs);

  const Model& model;
  const CalibrationSet& cs;
  int64_t S, T, C, V, L;
  std::map<std::string, LinearSlot> linears;           // block linears by GGUF name
  std::vector<std::vector<float>> block_in;             // L + 1 of (S, T, C): block l's input; [L] the last block's output
  std::vector<float> logp;                              // (S, T, V) float log-probabilities
  std::map<std::pair<int64_t, std::string>, std::vector<double>> h;  // (layer, group) → Σ x² per column
  std::vector<double> token_count;                      // (V) occurrences of each token
  std::vector<double> h_out;                            // (C) Σ x² of the head's normed input
  Engine engine;                                        // of `model`, repacking off

  // w rounded into f: to nearest, or with method "gptq" a block linear of a format with
  // GPTQ's rounding steps by GPTQ, its Hessian from the block's cached float inputs (H
  // singular: to nearest, as the pipeline does).
  std::vector<uint8_t> round(const Weight& w, const Format& f, const std::string& method);

 private:
  const std::vector<double>& hessian_of(int64_t layer, const std::string& group);
  int64_t hessian_layer_ = -1;
  std::map<std::string, std::vector<double>> hessians_;  // group → (cols, cols)
};

}  // namespace lowbit
