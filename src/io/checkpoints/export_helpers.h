// Shared by the layout writers: lowbit intN group weights taken apart into codes, zeros and
// fp16 scales, and little-endian tensor byte builders.
#pragma once

#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "io/checkpoints/checkpoint_layout.h"

namespace lowbit {

// An intN group weight's parts: codes [rows][cols], zeros and scales [rows][groups].
struct IntParts {
  IntFormatShape shape;
  int64_t rows = 0, cols = 0, groups = 0, group = 0;
  std::vector<uint8_t> codes;
  std::vector<int32_t> zeros;
  std::vector<uint16_t> scales;
};
// With empty `bytes`, only the shape fields are filled. An Error naming the layout and the
// format when f is not an intN group format.
IntParts int_parts(const char* layout, const Format& f, std::span<const uint8_t> bytes, int64_t rows, int64_t cols);

// A tensor of `n` 32-bit words / 16-bit values, as bytes.
std::vector<uint8_t> words_bytes(const std::vector<uint32_t>& words);
std::vector<uint8_t> halves_bytes(const std::vector<uint16_t>& halves);
std::vector<uint8_t> floats_bytes(const std::vector<float>& values);

// Sets bits [bit, bit+width) of a little-endian stream of 32-bit words to v.
inline void put_stream_bits(std::vector<uint32_t>& words, uint64_t word0, uint64_t stride, uint64_t bit, int width, uint32_t v) {
  const uint64_t w = bit / 32, s = bit % 32;
  words[word0 + w * stride] |= v << s;
  if (s + width > 32) words[word0 + (w + 1) * stride] |= v >> (32 - s);
}

}  // namespace lowbit
