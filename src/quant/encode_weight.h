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

// Rows first_row.. of a tensor, x: (rows, cols) → out (rows × row bytes) of a row-local
// format, checked as quantize_tensor checks: the kernel table's encoder when there is one
// and no importance weights are given, else Format::quantize.
void encode_rows(const Format& format, const float* x, int64_t rows, int64_t cols, const float* importance, uint8_t* out,
                 int64_t first_row);

}  // namespace lowbit
