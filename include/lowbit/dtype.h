// Element types of stored tensors (the safetensors dtype names) and conversion of a
// stored float array to fp32. Not the quantized formats: those live in format.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace lowbit {

enum class DType { F64, F32, F16, BF16, F8_E4M3, F8_E5M2, I64, I32, I16, I8, U64, U32, U16, U8, BOOL };

std::string_view dtype_name(DType t);                     // "F32", "F8_E4M3", ...
std::optional<DType> dtype_from_name(std::string_view n);  // nullopt if unknown
size_t dtype_size(DType t);                               // bytes per element
bool dtype_is_float(DType t);

// Converts `count` little-endian elements of float dtype `t` at `src` to fp32.
// Throws Error for non-float dtypes.
void convert_to_f32(DType t, const uint8_t* src, size_t count, float* dst);

}  // namespace lowbit
