// Finding NaN and Inf in a model's weights (norms included), by decoding every row of
// every weight in its own format. Commands that use weights refuse them; info reports them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lowbit/model.h"

namespace lowbit {

struct NonFiniteWeight {
  std::string tensor;
  int64_t row = 0, col = 0;
  float value = 0;
  int64_t count = 0;  // non-finite values in this tensor
};

// One entry per weight holding a non-finite value: its first one (lowest row, then column)
// and how many there are.
std::vector<NonFiniteWeight> find_nonfinite_weights(const Model& model);

// Throws Error naming the model's file, the tensor, row, column and value of the first
// non-finite weight.
void require_finite_weights(const Model& model);

}  // namespace lowbit
