// DType table: names and sizes of stored element types, and conversion to fp32.
#include "lowbit/dtype.h"

#include <array>
#include <cstring>
#include <string>

#include "lowbit/error.h"
#include "lowbit/float_convert.h"

namespace lowbit {
namespace {

struct DTypeRow {
  DType type;
  std::string_view name;
  size_t size;
  bool is_float;
};

constexpr std::array<DTypeRow, 15> kDTypes{{
    {DType::F64, "F64", 8, true},      {DType::F32, "F32", 4, true},
    {DType::F16, "F16", 2, true},      {DType::BF16, "BF16", 2, true},
    {DType::F8_E4M3, "F8_E4M3", 1, true}, {DType::F8_E5M2, "F8_E5M2", 1, true},
    {DType::I64, "I64", 8, false},     {DType::I32, "I32", 4, false},
    {DType::I16, "I16", 2, false},     {DType::I8, "I8", 1, false},
    {DType::U64, "U64", 8, false},     {DType::U32, "U32", 4, false},
    {DType::U16, "U16", 2, false},     {DType::U8, "U8", 1, false},
    {DType::BOOL, "BOOL", 1, false},
}};

const DTypeRow& row(DType t) { return kDTypes[static_cast<size_t>(t)]; }

template <typename T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

}  // namespace

std::string_view dtype_name(DType t) { return row(t).name; }
size_t dtype_size(DType t) { return row(t).size; }
bool dtype_is_float(DType t) { return row(t).is_float; }

std::optional<DType> dtype_from_name(std::string_view n) {
  for (const auto& r : kDTypes) {
    if (r.name == n) return r.type;
  }
  return std::nullopt;
}

void convert_to_f32(DType t, const uint8_t* src, size_t count, float* dst) {
  switch (t) {
    case DType::F32:
      std::memcpy(dst, src, count * 4);
      return;
    case DType::F64:
      for (size_t i = 0; i < count; ++i) dst[i] = static_cast<float>(load<double>(src + 8 * i));
      return;
    case DType::F16:
      for (size_t i = 0; i < count; ++i) dst[i] = fp16_to_fp32(load<uint16_t>(src + 2 * i));
      return;
    case DType::BF16:
      for (size_t i = 0; i < count; ++i) dst[i] = bf16_to_fp32(load<uint16_t>(src + 2 * i));
      return;
    case DType::F8_E4M3:
      for (size_t i = 0; i < count; ++i) dst[i] = fp8_e4m3_to_fp32(src[i]);
      return;
    case DType::F8_E5M2:
      for (size_t i = 0; i < count; ++i) dst[i] = fp8_e5m2_to_fp32(src[i]);
      return;
    default:
      throw Error("cannot convert a non-float dtype to f32", {.value = std::string(dtype_name(t))});
  }
}

}  // namespace lowbit
