// Scale search on the iq4 grid (ggml quantize_row_iq4_nl_impl, per block).
#include "formats/iq4_search.h"

#include <cmath>
#include <cstring>

#include "formats/format_impl.h"
#include "formats/scale_search.h"

namespace lowbit::formats {

float iq4_block_scale(int n, const float* x, const float* weights, int ntry, uint8_t* L) {
  float amax = 0, max = 0;
  for (int j = 0; j < n; ++j) {
    if (std::fabs(x[j]) > amax) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  if (amax < kGroupMaxEps) {
    std::memset(L, 0, n);
    return 0.0f;
  }
  auto fit = [&](float id, float* sumqx, float* sumq2, bool store) {
    *sumqx = *sumq2 = 0;
    for (int j = 0; j < n; ++j) {
      const int l = nearest_grid_index(kIq4Grid, id * x[j]);
      if (store) L[j] = static_cast<uint8_t>(l);
      const float q = kIq4Grid[l];
      *sumqx += weights[j] * q * x[j];
      *sumq2 += weights[j] * q * q;
    }
  };
  float d = ntry > 0 ? -max / kIq4Grid[0] : max / kIq4Grid[0];
  float sumqx, sumq2;
  fit(1 / d, &sumqx, &sumq2, true);
  d = sumqx / sumq2;
  float best = d * sumqx;
  for (int t = -ntry; t <= ntry; ++t) {
    fit((t + kIq4Grid[0]) / max, &sumqx, &sumq2, false);
    if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
      d = sumqx / sumq2;
      best = d * sumqx;
    }
  }
  return d;
}

}  // namespace lowbit::formats
