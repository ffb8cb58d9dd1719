// The method table: one row per quantization method (rtn, gptq, ...) beside the format
// table: its name, what it does, whether it needs calibration text, its options with
// defaults, and a factory. Methods write into formats: any calibrated method can target any
// format that has fit/round steps (format.h), GGUF k-quants included.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "lowbit/arch.h"
#include "lowbit/format.h"

namespace lowbit {

struct MethodOption {
  const char* name;
  const char* default_value;
  const char* help;
};

// A method and its options as given (CLI flags or a recipe rule); values are strings,
// checked by the method's factory.
struct MethodConfig {
  std::string name = "rtn";
  std::map<std::string, std::string> options;
};

// Runs the calibration samples through one block (the layer-wise driver implements it).
class BlockProbe {
 public:
  virtual ~BlockProbe() = default;
  // Every sample through block weights `w` up to the input of group g (arch_layout order):
  // fn(sample, x: (T, cols)).
  virtual void group_inputs(const LayerWeights& w, int g,
                            const std::function<void(int64_t sample, const float* x, int64_t T, int64_t cols)>& fn) = 0;
  virtual int64_t samples() const = 0;
};

// One calibrated method working on one block: before the groups, it may rewrite the
// block's float weights (AWQ's scales and clipping, folded into norms and linears); then
// for each group it sees the inputs of the group's linears (every calibration sample,
// through the block as quantized so far) and quantizes the group's members.
class CalibratedMethod {
 public:
  virtual ~CalibratedMethod() = default;
  // work: the block's weights; members, norms and linears that feed a group may be
  // replaced by f32 weights with new values (the model computes the same function).
  virtual void prepare_block(int64_t /*layer*/, const ArchLayout& /*layout*/, LayerWeights& /*work*/, BlockProbe& /*probe*/,
                             const std::function<const Format*(const Weight&)>& /*format_of*/, const MethodConfig& /*config*/) {}
  // A new group of linears reading inputs of `cols` features.
  virtual void begin_group(const LinearGroup& group, int64_t cols) = 0;
  // x: (T, cols), one calibration sample's input to the group.
  virtual void observe(const float* x, int64_t T) = 0;
  // One member of the group: w: (rows, cols) in f32 -> bytes in `format`, with the
  // member's own options (a recipe rule may set them).
  virtual std::vector<uint8_t> quantize(const std::string& tensor, std::vector<float> w, int64_t rows, int64_t cols,
                                        const Format& format, const MethodConfig& config) = 0;
};

struct Method {
  const char* name;
  const char* description;
  bool needs_calibration;
  std::vector<MethodOption> options;
  std::unique_ptr<CalibratedMethod> (*make)();  // null for methods without calibration
  // Rounds through the format's fit/round steps (format.h), so it needs formats that have
  // them; false: it rounds with the format's own quantizer and reaches every format.
  bool needs_fit_round = true;
  // W8A8 schemes: the weight format used without --format/--recipe, and the activations
  // the output records (an --act mode; quantize --act per-token|per-tensor picks dynamic
  // or static scales). act_with_any_format false: recorded only with weight_format or an
  // explicit --act (SmoothQuant also serves weight-only formats).
  const char* weight_format = nullptr;
  const char* act = nullptr;
  bool act_with_any_format = true;
};

// A weight shaped like `like` holding `values` (rows × cols) in f32, owning its bytes.
Weight make_f32_weight(const Weight& like, const std::vector<float>& values);

const std::vector<Method>& method_table();
const Method& method_by_name(const std::string& name);  // throws Error listing the known ones
// Throws Error naming an option the method does not have, or a malformed value.
void check_method_config(const MethodConfig& config);

// Typed option reads for factories: the value given, else the row's default.
double method_option_number(const MethodConfig& config, const std::string& option);
bool method_option_flag(const MethodConfig& config, const std::string& option);

}  // namespace lowbit
