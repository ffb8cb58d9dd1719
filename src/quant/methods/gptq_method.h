// GPTQ as a calibrated method of the table: the Hessian of a group's inputs, then
// gptq_quantize for each member through the target format's fit/round steps.
#pragma once

#include <memory>

#include "lowbit/methods.h"

namespace lowbit {

std::unique_ptr<CalibratedMethod> make_gptq_method();

}  // namespace lowbit
