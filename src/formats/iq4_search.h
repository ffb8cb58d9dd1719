// The non-linear 16-level grid of iq4_nl/iq4_xs and the scale search both use.
#pragma once

#include <cstdint>

namespace lowbit::formats {

inline constexpr int8_t kIq4Grid[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                        1,    13,   25,  38,  53,  69,  89,  113};

// Best scale for a block of `n` values on the grid, weighted by `weights`: start from
// max/grid[0], then try 2*ntry+1 inverse scales (grid[0] + t)/max and keep the best
// weighted least-squares fit. Writes grid indices to L. Returns 0 for an all-zero block.
float iq4_block_scale(int n, const float* x, const float* weights, int ntry, uint8_t* L);

}  // namespace lowbit::formats
