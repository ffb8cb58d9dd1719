// One weight encoded into a format, streamed: rows are decoded, checked and quantized in
// chunks that stay in cache, chunks in parallel. The bytes equal quantize_tensor on the
// whole decoded tensor, whatever the thread count.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "lowbit/format.h"
#include "lowbit/model.h"

namespace lowbit {

// order: output row r is source row order[r] (empty: the same row). importance: (w.cols)
// or nullptr. Errors name rows in the output's order, as quantize_tensor would.
std::vector<uint8_t> encode_weight(const Weight& w, const Format& format, std::span<const int64_t> order,
                                   const float* importance);

}  // namespace lowbit
