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

}  // namespace lowbit::formats
