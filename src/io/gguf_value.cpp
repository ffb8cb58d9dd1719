// GgufValue constructors and accessors.
#include <string>

#include "lowbit/error.h"
#include "lowbit/gguf.h"

namespace lowbit {

GgufValue GgufValue::u32(uint32_t v) { GgufValue x; x.type = GgufType::kU32; x.u = v; return x; }
GgufValue GgufValue::i32(int32_t v) { GgufValue x; x.type = GgufType::kI32; x.i = v; return x; }
GgufValue GgufValue::f32(float v) { GgufValue x; x.type = GgufType::kF32; x.f = v; return x; }
GgufValue GgufValue::boolean(bool v) { GgufValue x; x.type = GgufType::kBool; x.u = v; return x; }
GgufValue GgufValue::string(std::string v) { GgufValue x; x.type = GgufType::kString; x.s = std::move(v); return x; }

namespace {

// An array of `elem` values, each made by `make`.
template <typename T, typename Make>
GgufValue array_of(GgufType elem, const std::vector<T>& v, Make make) {
  GgufValue x;
  x.type = GgufType::kArray;
  x.elem_type = elem;
  for (const T& e : v) x.array.push_back(make(e));
  return x;
}

}  // namespace

GgufValue GgufValue::strings(const std::vector<std::string>& v) { return array_of(GgufType::kString, v, string); }
GgufValue GgufValue::f32s(const std::vector<float>& v) { return array_of(GgufType::kF32, v, f32); }
GgufValue GgufValue::i32s(const std::vector<int32_t>& v) { return array_of(GgufType::kI32, v, i32); }

bool GgufValue::is_integer() const {
  switch (type) {
    case GgufType::kU8: case GgufType::kI8: case GgufType::kU16: case GgufType::kI16:
    case GgufType::kU32: case GgufType::kI32: case GgufType::kU64: case GgufType::kI64: case GgufType::kBool:
      return true;
    default:
      return false;
  }
}

int64_t GgufValue::as_int() const {
  switch (type) {
    case GgufType::kU8: case GgufType::kU16: case GgufType::kU32: case GgufType::kU64: case GgufType::kBool:
      return static_cast<int64_t>(u);
    case GgufType::kI8: case GgufType::kI16: case GgufType::kI32: case GgufType::kI64:
      return i;
    default:
      throw Error("GGUF value is not an integer", {.value = describe()});
  }
}

double GgufValue::as_float() const {
  if (type == GgufType::kF32 || type == GgufType::kF64) return f;
  return static_cast<double>(as_int());
}

std::string GgufValue::describe() const {
  switch (type) {
    case GgufType::kString: return "\"" + s.substr(0, 40) + "\"";
    case GgufType::kArray: return "array of " + std::to_string(array.size());
    case GgufType::kF32: case GgufType::kF64: return std::to_string(f);
    default: return is_integer() ? std::to_string(as_int()) : "?";
  }
}

}  // namespace lowbit
