// Per-input-channel scales folded into a block without changing what it computes (AWQ,
// SmoothQuant): what feeds a group of linears is divided by s, the group's input columns
// multiplied by it.
#pragma once

#include <vector>

#include "lowbit/arch.h"
#include "lowbit/model.h"

namespace lowbit {

// s: (cols of the group's input). Feeding RMSNorm weight (or the previous linear's output
// rows and its bias) ÷ s; every member's input columns × s. The changed weights become f32.
void fold_input_scales(const LinearGroup& group, LayerWeights& work, const std::vector<float>& s);

}  // namespace lowbit
