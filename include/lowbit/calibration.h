// Calibration samples for the calibrated methods (GPTQ, AWQ): windows of `length` tokens
// cut from a tokenized text, BOS first in each (as the perplexity chunks), chosen at random
// with a seed (as GPTQ's and AutoAWQ's loaders pick random windows) without overlapping.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "lowbit/model.h"

namespace lowbit {

struct CalibrationOptions {
  int64_t samples = 128;   // GPTQModel/AutoAWQ defaults: 128 samples
  int64_t length = 0;      // tokens per sample; 0: 512 (AutoAWQ's) or the model's context if shorter
  uint64_t seed = 0;
};

struct CalibrationSet {
  std::vector<std::vector<int32_t>> samples;  // each of `length` tokens
  std::string source;
  int64_t tokens() const;
};

// From a text file: errors name the file (missing, empty, shorter than one sample). When
// the text holds fewer non-overlapping windows than asked, warns and uses those it holds.
CalibrationSet load_calibration(const Model& model, const std::string& path, const CalibrationOptions& options);
// From tokens already encoded (BOS included or not: each window gets BOS at its start).
CalibrationSet make_calibration(const Model& model, std::span<const int32_t> tokens, const CalibrationOptions& options,
                                const std::string& source);

}  // namespace lowbit
