// Scalar conversions between fp32 and the narrow float types lowbit stores:
// IEEE fp16, bfloat16, OCP fp8 E4M3 (no inf, saturating) and fp8 E5M2 (IEEE-like).
// All fp32 -> narrow conversions round to nearest, ties to even. Not SIMD kernels.
#pragma once

#include <cstdint>

namespace lowbit {

float fp16_to_fp32(uint16_t h);
// n little-endian binary16 values (unaligned bytes) -> out (n), F16C where the CPU has it.
void fp16_row_to_fp32(const uint8_t* in, int64_t n, float* out);
uint16_t fp32_to_fp16(float f);  // overflow -> inf, NaN -> quiet NaN (sign kept)

float bf16_to_fp32(uint16_t b);
uint16_t fp32_to_bf16(float f);  // NaN -> quiet NaN, as ggml does

// OCP E4M3 ("e4m3fn"): bias 7, max 448, S.1111.111 is NaN, no infinities.
// Finite values beyond 448 and infinities saturate to +-448; NaN -> 0x7F | sign.
float fp8_e4m3_to_fp32(uint8_t v);
uint8_t fp32_to_fp8_e4m3(float f);

// OCP E5M2: bias 15, max 57344, infinities and NaN as in IEEE (overflow -> inf).
float fp8_e5m2_to_fp32(uint8_t v);
uint8_t fp32_to_fp8_e5m2(float f);

// OCP MX E8M0 scale: 2^(e-127); 0xFF is NaN.
float e8m0_to_fp32(uint8_t e);

}  // namespace lowbit
