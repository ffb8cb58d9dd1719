// Lossless GGUF types for weights read from GPTQ/AWQ/compressed-tensors checkpoints: an
// intN group weight whose values a GGUF block type holds exactly is rewritten into it with
// no requantization (int4 symmetric -> q4_0, int4 asymmetric -> q4_1 when every min
// -scale·zero is exact in fp16, int8 symmetric -> q8_0; groups of 32, 64 and 128). The
// result is checked value by value against the source before it is used.
#pragma once

#include <optional>

#include "lowbit/model.h"

namespace lowbit {

// The weight in a GGUF type with bit-identical values, or nullopt when none holds them.
// With round_mins, an asymmetric int4 weight whose mins are not exact in fp16 still becomes
// q4_1 with each min rounded to fp16 (the only change; its error is the caller's to report).
std::optional<Weight> exact_gguf_weight(const Weight& w, bool round_mins = false);

}  // namespace lowbit
