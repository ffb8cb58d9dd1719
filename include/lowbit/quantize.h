// `lowbit quantize`: the streaming pipeline. Tensor by tensor: decode the source tensor to
// f32, pick its format with the recipe (falling back when rows do not fit), quantize it
// (with importance weights when given) and append it to the output; then drop the source
// pages. Peak memory is about one f32 tensor plus its quantized bytes. With a calibrated
// method (GPTQ) the block linears come from the layer-wise driver, one block at a time, in
// the order the writer needs them.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "lowbit/calibration.h"
#include "lowbit/layerwise.h"
#include "lowbit/methods.h"
#include "lowbit/mix.h"
#include "lowbit/model.h"
#include "lowbit/recipe.h"

namespace lowbit {

struct QuantizeOptions {
  std::string input;            // any readable model
  std::string output;           // a .gguf file, or else a folder (safetensors + config.json + tokenizer)
  std::string recipe = "q4_k_m";  // built-in name, pure:FORMAT, or a JSON file
  std::optional<Recipe> recipe_data;  // a recipe given as data (lowbit qat), used instead of `recipe`
  // Mixed precision by measurement: with a sens.json (lowbit sensitivity) and a target, a
  // format per matrix chosen by plan_mixed_precision (lowbit/mix.h) replaces the recipe.
  std::string sensitivity;
  std::optional<SensitivityReport> sensitivity_data;  // or the sensitivities themselves
  MixTarget mix_target;
  // Measured branching of the plan (matrices 0: none); on `calib`, else the sensitivities' own text.
  BranchOptions mix_branch{.matrices = 0};
  std::string imatrix;          // llama.cpp imatrix (GGUF or .dat), optional
  std::string tokenizer;        // llama2.c tokenizer .bin, optional
  std::string name;             // general.name
  // Folder output in another library's checkpoint layout: gptq, gptq_v2, awq, bnb or
  // compressed-tensors ("" for lowbit's own). Every block linear must then be in one format
  // that layout holds; token_embd and output stay 16-bit, as those libraries keep them.
  std::string export_layout;
  MethodConfig method;          // default method for the block linears (a recipe rule may override)
  // Applied to the loaded model before anything else (lowbit merge: LoRA adapters merged).
  std::function<void(Model&)> transform;
  // How the block linears' inputs run, recorded in the folder's config.json; per_tensor:
  // each linear's static input_scale, measured on --calib through the quantized blocks.
  ActivationScheme activations;
  std::string calib;            // calibration text (calibrated methods)
  CalibrationOptions calib_options;
  LayerwiseProgress calib_progress;  // per block and group of the calibrated pass
  // Continue the partial output a killed run of the same command left (OUTPUT.tmp.PID.*,
  // checked by its journal's digests); the result is byte-identical to an uninterrupted run.
  // Without it such a leftover is removed (with a warning).
  bool resume = false;
  // (tensor index, tensor count, f32 bytes done, tensor name)
  std::function<void(int64_t, int64_t, uint64_t, const std::string&)> progress;
};

struct QuantizeReport {
  struct FormatTotal {
    int64_t tensors = 0, parameters = 0;
    uint64_t bytes = 0;
  };
  std::map<std::string, FormatTotal> formats;
  std::vector<std::string> fallbacks;   // "tensor: reason"
  std::vector<std::string> imatrix_missing;
  int64_t parameters = 0;
  uint64_t bytes = 0;        // tensor data written
  uint64_t file_bytes = 0;
  double seconds = 0;
  uint64_t peak_rss_bytes = 0;  // the process's peak resident memory at the end
  std::string recipe;
  std::optional<MixPlan> mix;  // with a mixed-precision target
  // --resume: the tensors taken from the partial output (checked), the block the calibrated
  // pass continued at (-1: none), and a line saying what was found.
  int64_t resumed_tensors = 0, resumed_block = -1;
  std::string resume_note;
  double bits_per_weight() const { return parameters ? 8.0 * bytes / parameters : 0; }
};

QuantizeReport quantize_model(const QuantizeOptions& options);

}  // namespace lowbit
