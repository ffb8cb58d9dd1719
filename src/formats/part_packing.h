// Building a format's bytes from parts that another library already chose (scales, zero
// points, codes), so a foreign checkpoint's quantized values enter lowbit unchanged. The
// layouts stay defined in their format files; these are their writers.
#pragma once

#include <cstdint>

namespace lowbit::formats {

// One group of an int{bits}_*_{sym,asym} format (int_affine.cpp): fp16 scale bits, the zero
// point (asym; a symmetric group's zero is 2^(bits-1)), n codes of `bits` bits.
void pack_affine_group(int bits, bool sym, uint16_t scale_f16, int zero, const uint8_t* codes, int64_t n, uint8_t* out);

// One block of nf4/fp4 (nf4_fp4.cpp): the fp32 absmax and 32 bytes of codes in bnb's order
// (high nibble first).
void pack_bnb4_block(float absmax, const uint8_t* codes, uint8_t* out);
// A whole nf4_dq/fp4_dq tensor of numel elements: bnb's codes (numel/2 bytes), the 8-bit
// absmax codes (one per 64-block), the fp32 scale of each 256-block group, and the offset.
void pack_bnb4_dq(const uint8_t* codes, int64_t numel, const uint8_t* qabsmax, const float* group_scales, float offset, uint8_t* out);

// The inverses, for writing lowbit's bytes in another library's layout.
struct AffineGroupParts {
  uint16_t scale_f16;
  int zero;
};
AffineGroupParts unpack_affine_group(int bits, bool sym, const uint8_t* group, int64_t n, uint8_t* codes);
// nf4/fp4 block: its absmax; `codes` points at its 32 code bytes.
float bnb4_block_absmax(const uint8_t* block, const uint8_t** codes);
// nf4_dq/fp4_dq tensor of numel elements: pointers into its parts.
struct Bnb4DqParts {
  const uint8_t* codes;       // numel/2
  const uint8_t* qabsmax;     // one per 64-block
  const uint8_t* group_scales;  // f32 per 256 blocks (unaligned)
  int64_t nblocks, ngroups;
  float offset;
};
Bnb4DqParts bnb4_dq_parts(const uint8_t* data, int64_t numel);

}  // namespace lowbit::formats
