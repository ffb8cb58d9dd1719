// Overflow-checked size arithmetic (checked_size.h), on the compiler's overflow builtins.
#include "lowbit/checked_size.h"

#include <string>

#include "lowbit/error.h"

namespace lowbit {
namespace {

[[noreturn]] void overflow(std::string_view what, const std::string& value) {
  throw Error("size overflow computing " + std::string(what), {.value = value});
}

}  // namespace

uint64_t checked_mul(uint64_t a, uint64_t b, std::string_view what) {
  uint64_t r;
  if (__builtin_mul_overflow(a, b, &r)) overflow(what, std::to_string(a) + " x " + std::to_string(b));
  return r;
}

uint64_t checked_add(uint64_t a, uint64_t b, std::string_view what) {
  uint64_t r;
  if (__builtin_add_overflow(a, b, &r)) overflow(what, std::to_string(a) + " + " + std::to_string(b));
  return r;
}

int64_t checked_mul_i64(int64_t a, int64_t b, std::string_view what) {
  if (a < 0 || b < 0) overflow(what, std::to_string(a) + " x " + std::to_string(b) + " (negative)");
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r)) overflow(what, std::to_string(a) + " x " + std::to_string(b));
  return r;
}

int64_t checked_numel(std::span<const int64_t> dims, std::string_view what) {
  int64_t n = 1;
  for (int64_t d : dims) n = checked_mul_i64(n, d, what);
  return n;
}

std::string describe_range(uint64_t begin, uint64_t size) {
  uint64_t end;
  if (__builtin_add_overflow(begin, size, &end)) {
    return "[" + std::to_string(begin) + ", " + std::to_string(begin) + " + " + std::to_string(size) + ") beyond 2^64";
  }
  return "[" + std::to_string(begin) + ", " + std::to_string(end) + ")";
}

}  // namespace lowbit
