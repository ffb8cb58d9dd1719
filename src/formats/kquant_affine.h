// The scale/min search shared by q4_k and q5_k (they differ only in the level count and
// the bit packing): eight 32-element sub-blocks, 6-bit sub-scales and sub-mins.
#pragma once

#include <cstdint>

namespace lowbit::formats {

struct AffineSuperBlock {
  uint16_t d;           // fp16 super-scale of the sub-scales
  uint16_t dmin;        // fp16 super-scale of the sub-mins
  uint8_t scales[12];   // packed 6-bit scales and mins (kquant_scales.h)
  uint8_t L[256];       // levels 0..nmax, in element order
};

// x: (256); importance: (256) or nullptr. nmax: 15 (q4_k) or 31 (q5_k).
AffineSuperBlock quantize_affine_superblock(const float* x, const float* importance, int nmax);
// `count` consecutive super-blocks (x: (count, 256), importance likewise) into out[count],
// their sub-block searches batched (affine_scale_search_many); each equals
// quantize_affine_superblock on its own.
void quantize_affine_superblocks(const float* x, const float* importance, int nmax, int count, AffineSuperBlock* out);
inline constexpr int kAffineBatch = 2;  // super-blocks per batch: 16 sub-block searches

}  // namespace lowbit::formats
