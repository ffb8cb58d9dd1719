// Checked entry points over the format table: shape and finiteness checks, then the row's
// reference quantizer or decoder.
#include <cmath>
#include <string>

#include "lowbit/error.h"
#include "lowbit/format.h"

namespace lowbit {
namespace {

void check_shape(const Format& f, int64_t rows, int64_t cols) {
  if (rows < 0 || cols <= 0) {
    throw Error("invalid tensor shape",
                {.value = std::to_string(rows) + " x " + std::to_string(cols)});
  }
  if (!format_fits(f, cols)) {
    throw Error("row length is not a multiple of " + std::string(f.name) + "'s block size " +
                    std::to_string(f.block_size),
                {.value = std::to_string(cols)});
  }
}

std::string describe_float(float v) {
  if (std::isnan(v)) return "nan";
  return v > 0 ? "inf" : "-inf";
}

}  // namespace

void check_quantize_input(const Format& f, const float* x, int64_t rows, int64_t cols, int64_t first_row) {
  const float limit = f.max_abs_input;
  const int64_t n = rows * cols;
  // One branch-free pass (NaN fails `<=`); the message is built only for a bad value.
  int bad = 0;
  for (int64_t i = 0; i < n; ++i) bad |= !(std::fabs(x[i]) <= limit);
  if (bad == 0) return;
  for (int64_t i = 0; i < n; ++i) {
    if (std::fabs(x[i]) <= limit) continue;
    const std::string where = "row " + std::to_string(first_row + i / cols) + ", column " + std::to_string(i % cols);
    if (!std::isfinite(x[i])) throw Error("non-finite weight at " + where, {.value = describe_float(x[i])});
    throw Error("weight at " + where + " exceeds the largest magnitude " + std::string(f.name) + " can store (" +
                    std::to_string(f.max_abs_input) + ")",
                {.value = std::to_string(x[i])});
  }
}

bool format_fits(const Format& f, int64_t cols) {
  return cols > 0 && (f.block_size == kPerRow || cols % f.block_size == 0);
}

uint64_t format_row_bytes(const Format& f, int64_t cols) {
  if (!f.row_local) throw Error("format has no per-row layout", {.value = std::string(f.name)});
  return f.tensor_bytes(1, cols);
}

void quantize_into(const Format& f, const float* x, int64_t rows, int64_t cols, const float* importance, uint8_t* out,
                   int64_t first_row) {
  check_shape(f, rows, cols);
  check_quantize_input(f, x, rows, cols, first_row);
  if (importance) {
    for (int64_t c = 0; c < cols; ++c) {
      if (!std::isfinite(importance[c]) || importance[c] < 0) {
        throw Error("importance weight at column " + std::to_string(c) +
                        " is not a finite non-negative number",
                    {.value = std::to_string(importance[c])});
      }
    }
  }
  f.quantize(x, rows, cols, f.uses_importance ? importance : nullptr, out);
}

std::vector<uint8_t> quantize_tensor(const Format& f, std::span<const float> x, int64_t rows,
                                     int64_t cols, const float* importance) {
  check_shape(f, rows, cols);
  if (x.size() != static_cast<size_t>(rows * cols)) {
    throw Error("input has " + std::to_string(x.size()) + " values, shape needs " +
                std::to_string(rows * cols));
  }
  std::vector<uint8_t> out(f.tensor_bytes(rows, cols));
  quantize_into(f, x.data(), rows, cols, importance, out.data());
  return out;
}

std::vector<float> dequantize_tensor(const Format& f, std::span<const uint8_t> data, int64_t rows,
                                     int64_t cols) {
  check_shape(f, rows, cols);
  if (data.size() != f.tensor_bytes(rows, cols)) {
    throw Error("quantized data has " + std::to_string(data.size()) + " bytes, " +
                    std::string(f.name) + " needs " + std::to_string(f.tensor_bytes(rows, cols)),
                {.value = std::to_string(rows) + " x " + std::to_string(cols)});
  }
  std::vector<float> out(static_cast<size_t>(rows * cols));
  f.dequantize(data.data(), rows, cols, 0, rows, out.data());
  return out;
}

}  // namespace lowbit
