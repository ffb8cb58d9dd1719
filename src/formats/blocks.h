// The block layouts of ggml's block formats, one struct each, shared by the format files
// (quantize/dequantize) and the kernels (src/kernels/). Byte layouts only: no code.
#pragma once

#include <cstdint>

namespace lowbit::formats {

// q4_0
struct BlockQ4_0 {
  uint16_t d;               // fp16 scale; value = (q - 8) * d
  uint8_t qs[16];   // byte j: element j (low nibble), element j+16 (high nibble)
};
static_assert(sizeof(BlockQ4_0) == 18, "q4_0 block is 18 bytes (4.5 bpw)");

// q4_1
struct BlockQ4_1 {
  uint16_t d;              // fp16 scale
  uint16_t m;              // fp16 min; value = q * d + m
  uint8_t qs[16];  // byte j: element j (low nibble), element j+16 (high nibble)
};
static_assert(sizeof(BlockQ4_1) == 20, "q4_1 block is 20 bytes (5.0 bpw)");

// q5_0
struct BlockQ5_0 {
  uint16_t d;              // fp16 scale; value = (q - 16) * d
  uint8_t qh[4];           // bit j: fifth bit of element j (little-endian u32)
  uint8_t qs[16];  // low nibbles: element j (low), element j+16 (high)
};
static_assert(sizeof(BlockQ5_0) == 22, "q5_0 block is 22 bytes (5.5 bpw)");

// q5_1
struct BlockQ5_1 {
  uint16_t d;              // fp16 scale
  uint16_t m;              // fp16 min; value = q * d + m
  uint8_t qh[4];           // bit j: fifth bit of element j
  uint8_t qs[16];  // low nibbles: element j (low), element j+16 (high)
};
static_assert(sizeof(BlockQ5_1) == 24, "q5_1 block is 24 bytes (6.0 bpw)");

// q8_0
struct BlockQ8_0 {
  uint16_t d;           // fp16 scale; value = q * d
  int8_t qs[32];    // levels -127..127
};
static_assert(sizeof(BlockQ8_0) == 34, "q8_0 block is 34 bytes (8.5 bpw)");

// q2_k
struct BlockQ2_K {
  uint8_t scales[16];  // low nibble: scale, high nibble: min, per sub-block
  uint8_t qs[64];       // 2-bit levels: byte l of each 32-byte chunk holds
                                // elements l, l+32, l+64, l+96 of its 128-element half
  uint16_t d;                   // fp16 super-scale for scales
  uint16_t dmin;                // fp16 super-scale for mins; value = d*sc*q - dmin*m
};
static_assert(sizeof(BlockQ2_K) == 84, "q2_k block is 84 bytes (2.625 bpw)");

// q3_k
struct BlockQ3_K {
  uint8_t hmask[32];  // high bit: element j -> byte j%32, bit j/32
  uint8_t qs[64];     // low 2 bits, packed as in q2_k
  uint8_t scales[12];         // 16 six-bit scales (biased by 32): low nibbles in bytes
                              // 0..7, high 2 bits in bytes 8..11
  uint16_t d;                 // fp16 super-scale; value = d * (sc - 32) * (q - 4)
};
static_assert(sizeof(BlockQ3_K) == 110, "q3_k block is 110 bytes (3.4375 bpw)");

// q4_k
struct BlockQ4_K {
  uint16_t d;               // fp16 super-scale of the sub-scales
  uint16_t dmin;            // fp16 super-scale of the sub-mins
  uint8_t scales[12];       // 8 six-bit scales and 8 six-bit mins (kquant_scales.h)
  uint8_t qs[128];   // per 64 elements: byte l = element l (low) | element l+32 (high)
};
static_assert(sizeof(BlockQ4_K) == 144, "q4_k block is 144 bytes (4.5 bpw)");
// value = d * sc * q - dmin * m

// q5_k
struct BlockQ5_K {
  uint16_t d;               // fp16 super-scale of the sub-scales
  uint16_t dmin;            // fp16 super-scale of the sub-mins
  uint8_t scales[12];       // 8 six-bit scales and 8 six-bit mins (kquant_scales.h)
  uint8_t qh[32];   // fifth bits: element 64c+l -> qh[l] bit 2c, 64c+32+l -> bit 2c+1
  uint8_t qs[128];   // low nibbles, packed as in q4_k
};
static_assert(sizeof(BlockQ5_K) == 176, "q5_k block is 176 bytes (5.5 bpw)");

// q6_k
struct BlockQ6_K {
  uint8_t ql[128];   // low 4 bits; per 128 elements: ql[l] = e[l] | e[l+64] << 4,
                            // ql[l+32] = e[l+32] | e[l+96] << 4
  uint8_t qh[64];   // high 2 bits; per 128: qh[l] = e[l] | e[l+32]<<2 | e[l+64]<<4 | e[l+96]<<6
  int8_t scales[16];  // signed sub-scales
  uint16_t d;               // fp16 super-scale; value = d * scale * (q - 32)
};
static_assert(sizeof(BlockQ6_K) == 210, "q6_k block is 210 bytes (6.5625 bpw)");

// iq4_nl
struct BlockIq4Nl {
  uint16_t d;               // fp16 scale
  uint8_t qs[16];   // byte j: index of element j (low), element j+16 (high)
};
static_assert(sizeof(BlockIq4Nl) == 18, "iq4_nl block is 18 bytes (4.5 bpw)");

// iq4_xs
struct BlockIq4Xs {
  uint16_t d;              // fp16 super-scale
  uint16_t scales_h;       // high 2 bits of the 8 block scales (block ib at bits 2ib)
  uint8_t scales_l[4];     // low 4 bits of the block scales (block ib: byte ib/2, nibble ib%2)
  uint8_t qs[128];  // per 32 elements: byte j = index j (low) | index j+16 (high)
};
static_assert(sizeof(BlockIq4Xs) == 136, "iq4_xs block is 136 bytes (4.25 bpw)");

}  // namespace lowbit::formats
