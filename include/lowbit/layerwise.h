// The layer-wise calibration driver (GPTQ's sequential mode): run the calibration samples
// to block 0; for each block, for each group of linears sharing an input in forward order
// ([q,k,v] → o → [gate,up] → down, from arch_layout), capture that input through the
// block as quantized so far, let the method quantize the group, and put the quantized
// weights in place; then run the block with all its quantized weights to get the next
// block's inputs. Peak memory: the samples' activations (samples × length × dim floats)
// and one block's weights, not the model. Blocks are produced in order, so a streaming
// writer can take each block's tensors as they come.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "lowbit/calibration.h"
#include "lowbit/engine.h"
#include "lowbit/methods.h"
#include "lowbit/model.h"

namespace lowbit {

struct QuantizedTensor {
  const Format* format;
  std::vector<uint8_t> bytes;
  float input_absmax = 0;  // max |input| over the calibration samples (record_input_absmax)
};

// For each linear of a block: the format it is written in and the method (with options)
// that quantizes it; method "rtn" rounds it on its own.
struct LinearTarget {
  const Format* format;
  MethodConfig method;
  std::vector<float> importance;  // imatrix values for RTN (empty: none)
};
using TargetFn = std::function<LinearTarget(const Weight& w, int64_t layer)>;

// (block index, block count, group index within the block, group count)
using LayerwiseProgress = std::function<void(int64_t block, int64_t blocks, int64_t group, int64_t groups)>;

class LayerwiseQuantizer {
 public:
  LayerwiseQuantizer(const Model& model, CalibrationSet calibration, TargetFn target, LayerwiseProgress progress = {});
  ~LayerwiseQuantizer();
  // Quantizes the next block (0, 1, ...): every tensor of it by name, the norms in f32.
  std::map<std::string, QuantizedTensor> next_block();
  int64_t blocks_done() const { return next_; }
  // Also measure each linear's max |input| on the calibration samples, through the block as
  // quantized so far (the static activation scales), groups without a calibrated method too.
  void record_input_absmax(bool on) { record_absmax_ = on; }
  // The next block's inputs (samples × length × dim), and continuing at `block` from those
  // a killed run saved (quantize --resume): the blocks after it come out as they would have.
  const std::vector<float>& inputs() const { return x_; }
  void resume_at(int64_t block, std::vector<float> inputs);

 private:
  class Probe;
  const Model& model_;
  CalibrationSet calib_;
  TargetFn target_;
  LayerwiseProgress progress_;
  Engine engine_;
  int64_t next_ = 0, length_ = 0;
  bool record_absmax_ = false;
  std::vector<float> x_;  // (samples, length, dim): the next block's inputs
  std::map<std::string, std::unique_ptr<CalibratedMethod>> methods_;  // by method name, reused
};

}  // namespace lowbit
