// Overflow-checked size arithmetic for everything that comes from a file: element counts,
// row bytes, tensor bytes, offsets. One helper used by every reader and format row; a
// result that would wrap is an Error naming what was being computed, never a small number.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace lowbit {

// a * b and a + b; throw Error("size overflow computing WHAT", value "a x b") on wrap.
uint64_t checked_mul(uint64_t a, uint64_t b, std::string_view what);
uint64_t checked_add(uint64_t a, uint64_t b, std::string_view what);

// The product of `dims` (each >= 0) as an element count that fits int64_t; throws on a
// negative dimension or overflow.
int64_t checked_numel(std::span<const int64_t> dims, std::string_view what);

// a * b for signed element counts (both >= 0) that must fit int64_t.
int64_t checked_mul_i64(int64_t a, int64_t b, std::string_view what);

// "[begin, begin + size)" for messages, printed without wrapping when it would overflow.
std::string describe_range(uint64_t begin, uint64_t size);

}  // namespace lowbit
