// Lossless intN-group -> ggml block rewrites (see exact_gguf.h). Each row of the table names
// the source shape it takes and builds one 32-element ggml block from a group's scale, zero
// and codes; blocks.h holds the ggml layouts.
#include "lowbit/exact_gguf.h"

#include <cstring>

#include "formats/blocks.h"
#include "formats/part_packing.h"
#include "io/checkpoints/checkpoint_layout.h"
#include "lowbit/float_convert.h"

namespace lowbit {
namespace {

using formats::BlockQ4_0;
using formats::BlockQ4_1;
using formats::BlockQ8_0;

// Builds the block of 32 codes `q` (lowbit's unsigned codes) with scale s (fp16) and zero z;
// false when the block type cannot hold them.
using BlockBuilder = bool (*)(uint16_t s, int z, const uint8_t* q, uint8_t* out, bool round_mins);

bool q4_0_block(uint16_t s, int z, const uint8_t* q, uint8_t* out, bool) {
  if (z != 8) return false;
  BlockQ4_0 b;
  b.d = s;
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(q[j] | (q[j + 16] << 4));
  std::memcpy(out, &b, sizeof(b));
  return true;
}

bool q4_1_block(uint16_t s, int z, const uint8_t* q, uint8_t* out, bool round_mins) {
  const float min = -fp16_to_fp32(s) * static_cast<float>(z);
  BlockQ4_1 b;
  b.d = s;
  b.m = fp32_to_fp16(min);
  if (fp16_to_fp32(b.m) != min && !round_mins) return false;
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(q[j] | (q[j + 16] << 4));
  std::memcpy(out, &b, sizeof(b));
  return true;
}

bool q8_0_block(uint16_t s, int z, const uint8_t* q, uint8_t* out, bool) {
  BlockQ8_0 b;
  b.d = s;
  for (int j = 0; j < 32; ++j) {
    const int v = q[j] - z;
    if (v < -128 || v > 127) return false;
    b.qs[j] = static_cast<int8_t>(v);
  }
  std::memcpy(out, &b, sizeof(b));
  return true;
}

struct ExactRow {
  int bits;
  bool sym;
  const char* target;
  BlockBuilder build;
};

constexpr ExactRow kExact[] = {
    {4, true, "q4_0", &q4_0_block},
    {4, false, "q4_1", &q4_1_block},
    {8, true, "q8_0", &q8_0_block},
    {8, false, "q8_0", &q8_0_block},  // when every zero is 128
};

}  // namespace

std::optional<Weight> exact_gguf_weight(const Weight& w, bool round_mins) {
  const auto shape = int_format_shape(*w.format);
  if (!shape || shape->group == 0 || shape->group % 32 != 0) return std::nullopt;
  for (const ExactRow& row : kExact) {
    if (row.bits != shape->bits || row.sym != shape->sym) continue;
    const Format& target = format_by_name(row.target);
    auto bytes = std::make_shared<std::vector<uint8_t>>(target.tensor_bytes(w.rows, w.cols));
    const uint64_t src_row = format_row_bytes(*w.format, w.cols), dst_row = format_row_bytes(target, w.cols);
    const int64_t groups = w.cols / shape->group;
    const uint64_t group_bytes = src_row / groups, block_bytes = dst_row / (w.cols / 32);
    std::vector<uint8_t> codes(static_cast<size_t>(shape->group));
    bool ok = true;
    for (int64_t r = 0; r < w.rows && ok; ++r) {
      for (int64_t g = 0; g < groups && ok; ++g) {
        const auto parts = formats::unpack_affine_group(shape->bits, shape->sym, w.data.data() + r * src_row + g * group_bytes, shape->group, codes.data());
        for (int64_t b = 0; b < shape->group / 32 && ok; ++b) {
          ok = row.build(parts.scale_f16, parts.zero, codes.data() + 32 * b, bytes->data() + r * dst_row + (g * shape->group / 32 + b) * block_bytes, round_mins);
        }
      }
    }
    if (!ok) continue;
    Weight out{w.name, &target, w.rows, w.cols, *bytes, bytes};
    if (!round_mins && out.to_f32() != w.to_f32()) continue;  // the values, bit for bit (no NaN in these formats)
    return out;
  }
  return std::nullopt;
}

}  // namespace lowbit
