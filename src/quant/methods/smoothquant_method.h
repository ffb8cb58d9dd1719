// SmoothQuant as a calibrated method of the table (smoothquant_method.cpp).
#pragma once

#include <memory>

#include "lowbit/methods.h"

namespace lowbit {

std::unique_ptr<CalibratedMethod> make_smoothquant_method();

}  // namespace lowbit
