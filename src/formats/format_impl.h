// Shared plumbing for the format files: the Format row builders that turn per-row
// reference functions into the table's tensor-level entry points, and small helpers.
// Not part of the public API.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>

#include "lowbit/checked_size.h"
#include "lowbit/float_convert.h"
#include "lowbit/format.h"

namespace lowbit::formats {

inline constexpr float kFp16Max = 65504.0f;  // the largest finite fp16

// x: (n) one row; importance: (n) or nullptr; out: the row's bytes.
using QuantizeRowFn = void (*)(const float* x, const float* importance, int64_t n, uint8_t* out);
// in: the row's bytes; out: (n).
using DequantizeRowFn = void (*)(const uint8_t* in, int64_t n, float* out);
using RowBytesFn = uint64_t (*)(int64_t n);

// Rows are independent, so a tensor is quantized row by row (in parallel); the bytes do
// not depend on the thread count.
template <QuantizeRowFn Q, RowBytesFn B>
void quantize_rows(const float* x, int64_t rows, int64_t cols, const float* importance,
                   uint8_t* out) {
  const uint64_t rb = B(cols);
#pragma omp parallel for schedule(dynamic, 16) if (rows * cols >= (1 << 16))
  for (int64_t r = 0; r < rows; ++r) Q(x + r * cols, importance, cols, out + r * rb);
}

template <DequantizeRowFn D, RowBytesFn B>
void dequantize_rows(const uint8_t* data, int64_t /*rows*/, int64_t cols, int64_t row_begin,
                     int64_t row_end, float* out) {
  const uint64_t rb = B(cols);
  for (int64_t r = row_begin; r < row_end; ++r) D(data + r * rb, cols, out + (r - row_begin) * cols);
}

template <RowBytesFn B>
uint64_t rows_times_row_bytes(int64_t rows, int64_t cols) {
  return checked_mul(static_cast<uint64_t>(rows), B(cols), "tensor bytes (rows x row bytes)");
}

template <int64_t BlockSize, int64_t BlockBytes>
uint64_t block_row_bytes(int64_t n) {
  return static_cast<uint64_t>(n / BlockSize) * BlockBytes;
}

// A row of the format table for a block format whose blocks are `Block` structs.
template <typename Block, int64_t BlockSize, QuantizeRowFn Q, DequantizeRowFn D>
Format block_format(std::string_view name, int gguf_type, FormatKind kind, bool uses_importance,
                    Tolerance tol, std::string_view description, const FitRound* fit_round = nullptr) {
  constexpr auto bytes = &block_row_bytes<BlockSize, sizeof(Block)>;
  return Format{
      .name = name,
      .gguf_type = gguf_type,
      .kind = kind,
      .block_size = BlockSize,
      .block_bytes = sizeof(Block),
      .bits_per_weight = 8.0 * sizeof(Block) / BlockSize,
      .uses_importance = uses_importance,
      .max_abs_input = kFp16Max,  // block formats keep fp16 scales (and mins)
      .row_local = true,
      .tolerance = tol,
      .description = description,
      .tensor_bytes = &rows_times_row_bytes<bytes>,
      .quantize = &quantize_rows<Q, bytes>,
      .dequantize = &dequantize_rows<D, bytes>,
      .fit_round = fit_round,
  };
}


// Block access that tolerates any alignment of the row bytes.
template <typename Block>
Block load_block(const uint8_t* p) {
  Block b;
  std::memcpy(&b, p, sizeof(Block));
  return b;
}

template <typename Block>
void store_block(const Block& b, uint8_t* p) {
  std::memcpy(p, &b, sizeof(Block));
}

inline float h2f(uint16_t h) { return fp16_to_fp32(h); }
inline uint16_t f2h(float f) { return fp32_to_fp16(f); }

// Fields of a block struct read and written in place in (possibly unaligned) bytes.
inline float load_half(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return h2f(h);
}

// Sets the `bits`-wide field at bit `shift` of byte p to v.
inline void set_bits(uint8_t* p, int shift, int bits, int v) {
  const int mask = ((1 << bits) - 1) << shift;
  *p = static_cast<uint8_t>((*p & ~mask) | ((v << shift) & mask));
}
inline int get_bits(const uint8_t* p, int shift, int bits) { return (*p >> shift) & ((1 << bits) - 1); }

// Round to nearest, ties to even, as ggml's nearest_int does (add 1.5 * 2^23 and read the
// mantissa bits). Valid for |v| <= 2^22.
inline int nearest_int(float v) {
  float shifted = v + 12582912.f;
  int32_t bits;
  std::memcpy(&bits, &shifted, sizeof(bits));
  return (bits & 0x007fffff) - 0x00400000;
}

// nearest_int(v) clamped to [lo, hi], safe for any v (GPTQ's error feedback can push a
// value far outside the range its block was fitted to): equal to
// std::clamp(nearest_int(v), lo, hi) wherever nearest_int is valid.
inline int nearest_int_clamped(float v, int lo, int hi) {
  if (!(v > static_cast<float>(lo))) return lo;
  if (!(v < static_cast<float>(hi))) return hi;
  return std::clamp(nearest_int(v), lo, hi);
}

inline constexpr float kGroupMaxEps = 1e-15f;  // a group with |x| below this is all zero

}  // namespace lowbit::formats
