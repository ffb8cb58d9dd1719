// Quantization-aware training (src/train/qat.cpp): the decoder linears of a TrainModel
// trained under fake quantization into a table format, by one of the methods of a table:
//   - efficientqat (EfficientQAT, Chen et al. 2024): Block-AP, then E2E-QP. Block-AP
//     trains each decoder block in turn, its weights, scales and zero points, to reproduce
//     the float block's output (MSE) on calibration windows, the block's input coming
//     through the blocks already quantized; only one block's gradients and optimizer state
//     exist at a time. E2E-QP then freezes the weights as integer codes and trains only the
//     scales end to end on the next-token loss.
//   - ste: everything (weights, scales, norms, embeddings) trains end to end on the
//     next-token loss through the fake quantizer (straight-through rounding), as LLM-QAT
//     and PyTorch's QAT do.
// TrainModel::export_to then writes the quantized model.
#pragma once

#include <functional>
#include <span>
#include <string>
#include <vector>

#include "lowbit/format.h"
#include "lowbit/train.h"

namespace lowbit {

struct BlockApOptions {
  int64_t samples = 128;   // calibration windows
  int64_t seq_len = 256;   // tokens per window (at most the model's context)
  int64_t epochs = 4;      // passes over the windows per block
  int64_t batch = 2;       // windows per step
  // AdamW, no weight decay, cosine to 1/20. The paper's 2e-5 / 1e-4 are for thousands of
  // steps per block on 7B models; these suit the default 256 steps (docs/PERF.md).
  float weight_lr = 1e-4f, scale_lr = 5e-4f;
  uint64_t seed = 0;
};

struct QatOptions {
  const Format* format = nullptr;  // the decoder linears' format
  std::string method = "efficientqat";
  BlockApOptions block_ap;
  TrainOptions train;  // the end-to-end stage (E2E-QP's scales, or ste's everything)
  // (stage, step done, steps, loss): "block N" per Block-AP block, then "end to end".
  std::function<void(const std::string&, int64_t, int64_t, float)> progress;
};

struct QatReport {
  // Block-AP, per block: mean MSE of the block's output on all windows with the round-to-
  // nearest grid before training, and after.
  std::vector<float> block_mse_rtn, block_mse_trained;
  double block_seconds = 0;
  TrainReport train;  // the end-to-end stage
};

struct QatMethod {
  const char* name;
  const char* description;
  QatReport (*run)(TrainModel& model, std::span<const int32_t> tokens, const QatOptions& o);
};
const std::vector<QatMethod>& qat_methods();
const QatMethod& qat_method_by_name(const std::string& name);  // an Error listing the names otherwise

// Fake-quantizes `model` into o.format and trains it by o.method on `tokens` (o.train.source
// names them in errors).
QatReport quantization_aware_training(TrainModel& model, std::span<const int32_t> tokens, const QatOptions& o);

}  // namespace lowbit
