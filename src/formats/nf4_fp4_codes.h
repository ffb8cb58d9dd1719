// Code books of the bitsandbytes 4-bit formats and the 8-bit signed dynamic map used for
// double quantization.
#pragma once

namespace lowbit::formats {

// NF4 (QLoRA, Dettmers et al. 2023): quantiles of N(0,1) normalised to [-1, 1], exact 0.
inline constexpr float kNf4Code[16] = {
    -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
    -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
    0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
    0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f};

// bitsandbytes FP4 (E2M1 with its own bit order): bit 3 is the sign, bits 0..2 index
// {0, 0.0052083333, 0.6666667, 1, 0.3333333, 0.5, 0.1666667, 0.25}.
inline constexpr float kBnbFp4Code[16] = {
    0.0f, 0.005208333333f, 0.66666667f, 1.0f, 0.33333333f, 0.5f, 0.16666667f, 0.25f,
    -0.0f, -0.005208333333f, -0.66666667f, -1.0f, -0.33333333f, -0.5f, -0.16666667f, -0.25f};

// bnb.functional.create_dynamic_map(signed=True): 256 sorted values in [-1, 1].
const float* bnb_dynamic_map();
// Index of the map value nearest to v (v in [-1, 1]).
int nearest_dynamic_code(const float* map, float v);

}  // namespace lowbit::formats
