// Calibration windows from a text (see lowbit/calibration.h).
#include <algorithm>
#include <fstream>
#include <numeric>
#include <random>
#include <sstream>

#include "lowbit/calibration.h"
#include "lowbit/error.h"

namespace lowbit {

int64_t CalibrationSet::tokens() const {
  int64_t n = 0;
  for (const auto& s : samples) n += static_cast<int64_t>(s.size());
  return n;
}

CalibrationSet make_calibration(const Model& model, std::span<const int32_t> tokens, const CalibrationOptions& options,
                                const std::string& source) {
  CalibrationOptions o = options;
  if (o.length == 0) o.length = std::min<int64_t>(512, model.config.context_length);
  if (o.samples <= 0) throw Error("--calib-samples must be positive", {.file = source, .value = std::to_string(o.samples)});
  if (o.length < 2 || o.length > model.config.context_length) {
    throw Error("--calib-len must be between 2 and the model's context of " + std::to_string(model.config.context_length),
                {.file = source, .value = std::to_string(o.length)});
  }
  const int64_t available = static_cast<int64_t>(tokens.size()) / o.length;
  if (available == 0) {
    throw Error("calibration text is shorter than one sample of " + std::to_string(o.length) + " tokens",
                {.file = source, .value = std::to_string(tokens.size()) + " tokens"});
  }
  int64_t n = o.samples;
  if (available < n) {
    warn("the calibration text holds " + std::to_string(available) + " samples of " + std::to_string(o.length) +
             " tokens, not " + std::to_string(n) + ": using " + std::to_string(available),
         {.file = source});
    n = available;
  }
  // A random choice of n of the `available` non-overlapping windows, in text order.
  std::vector<int64_t> windows(available);
  std::iota(windows.begin(), windows.end(), 0);
  std::mt19937_64 rng(o.seed);
  std::shuffle(windows.begin(), windows.end(), rng);
  windows.resize(n);
  std::sort(windows.begin(), windows.end());
  CalibrationSet set;
  set.source = source;
  const int32_t bos = model.tokenizer ? model.tokenizer->bos() : -1;
  for (int64_t w : windows) {
    std::vector<int32_t> s(tokens.begin() + w * o.length, tokens.begin() + (w + 1) * o.length);
    if (bos >= 0) s[0] = bos;
    set.samples.push_back(std::move(s));
  }
  return set;
}

CalibrationSet load_calibration(const Model& model, const std::string& path, const CalibrationOptions& o) {
  if (!model.tokenizer) throw Error("the model has no tokenizer to encode the calibration text", {.file = model.source});
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read the calibration file", {.file = path});
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  if (text.empty()) throw Error("the calibration file is empty", {.file = path});
  const auto tokens = model.tokenizer->encode(text, true);
  return make_calibration(model, tokens, o, path);
}

}  // namespace lowbit
