// GPTQ in the layer-wise driver (see gptq_method.h).
#include "quant/methods/gptq_method.h"

#include <cmath>

#include "lowbit/error.h"
#include "lowbit/gptq.h"
#include "lowbit/hessian.h"
#include "quant/format_quantizer.h"

namespace lowbit {
namespace {

class GptqMethod final : public CalibratedMethod {
 public:
  void begin_group(const LinearGroup&, int64_t cols) override {
    acc_ = std::make_unique<HessianAccumulator>(cols);
    hessian_.clear();
  }

  void observe(const float* x, int64_t T) override { acc_->add(x, T); }

  std::vector<uint8_t> quantize(const std::string& tensor, std::vector<float> w, int64_t rows, int64_t cols,
                                const Format& format, const MethodConfig& config) override {
    if (hessian_.empty()) {
      hessian_ = acc_->take_hessian();
      acc_.reset();  // its float64 sums and staging buffers are not needed any more
    }
    GptqOptions o;
    o.percdamp = method_option_number(config, "damp");
    o.block_size = static_cast<int64_t>(method_option_number(config, "block"));
    o.act_order = method_option_flag(config, "act-order");
    o.static_groups = method_option_flag(config, "static-groups");
    if (!(o.percdamp >= 0) || o.block_size < 1) throw Error("GPTQ: damp must be >= 0 and block >= 1", {.tensor = tensor});
    FormatQuantizer quantizer(format, rows, cols, w);
    try {
      gptq_quantize(w, rows, cols, hessian_, quantizer, o);
    } catch (const Error& e) {
      // H stays singular (e.g. a group whose inputs are all zero): plain rounding instead.
      warn(e.message() + "; rounding to nearest instead", {.tensor = tensor});
      return quantize_tensor(format, w, rows, cols);
    }
    return quantizer.take_bytes();
  }

 private:
  std::unique_ptr<HessianAccumulator> acc_;
  std::vector<double> hessian_;
};

}  // namespace

std::unique_ptr<CalibratedMethod> make_gptq_method() { return std::make_unique<GptqMethod>(); }

}  // namespace lowbit
