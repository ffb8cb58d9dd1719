// The mixed-precision plan of a `lowbit quantize` run: its sensitivities and target, with
// the bytes the plan cannot change counted as the output will hold them.
#pragma once

#include "lowbit/mix.h"
#include "lowbit/quantize.h"

namespace lowbit {

// Norms (f32) and, for a --target-size, the GGUF header and extra tensors are fixed; in a
// GGUF file every tensor is padded to 32 bytes. An Error for --target-size with a folder.
MixPlan plan_for_output(const Model& model, const QuantizeOptions& o, bool to_gguf);

}  // namespace lowbit
