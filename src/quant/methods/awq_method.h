// AWQ as a calibrated method of the table (see awq.cpp).
#pragma once

#include <memory>

#include "lowbit/methods.h"

namespace lowbit {

std::unique_ptr<CalibratedMethod> make_awq_method();

}  // namespace lowbit
