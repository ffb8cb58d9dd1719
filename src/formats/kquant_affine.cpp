// Scale/min search for q4_k and q5_k super-blocks, following ggml's quantize_row_q4_K_ref
// (no importance) and quantize_row_q4_K_impl (with importance).
#include "formats/kquant_affine.h"

#include <algorithm>

#include "formats/format_impl.h"
#include "formats/kquant_scales.h"
#include "formats/scale_search.h"

namespace lowbit::formats {

AffineSuperBlock quantize_affine_superblock(const float* x, const float* importance, int nmax) {
  AffineSuperBlock b{};
  float scales[8], mins[8], weights[32], sw[8];
  if (importance) {
    const float sigma2 = 2 * mean_square(x, 256);
    for (int j = 0; j < 8; ++j) {
      importance_weights(x + 32 * j, importance + 32 * j, sigma2, 32, weights);
      sw[j] = 0;
      for (int l = 0; l < 32; ++l) sw[j] += weights[l];
      scales[j] = affine_scale_search(32, nmax, x + 32 * j, weights, b.L + 32 * j, &mins[j], -0.9f,
                                      0.05f, 36, false);
    }
    uint8_t Ls[8], Lm[8];
    b.d = f2h(positive_scale_search(8, 63, scales, Ls, sw));
    b.dmin = f2h(positive_scale_search(8, 63, mins, Lm, sw));
    for (int j = 0; j < 8; ++j) pack_scale_min_k4(b.scales, j, Ls[j], Lm[j]);
  } else {
    // Plain: weights av_x + |x| per sub-block; nmax 15 searches 21 steps from -1, nmax 31
    // 16 steps from -0.5 (ggml's q4_K and q5_K settings).
    const float rmin = nmax == 15 ? -1.0f : -0.5f;
    const int nstep = nmax == 15 ? 20 : 15;
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; ++j) {
      float sum_x2 = 0;
      for (int l = 0; l < 32; ++l) sum_x2 += x[32 * j + l] * x[32 * j + l];
      const float av_x = std::sqrt(sum_x2 / 32);
      for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(x[32 * j + l]);
      scales[j] = affine_scale_search(32, nmax, x + 32 * j, weights, b.L + 32 * j, &mins[j], rmin,
                                      0.1f, nstep, false);
      max_scale = std::max(max_scale, scales[j]);
      max_min = std::max(max_min, mins[j]);
    }
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    for (int j = 0; j < 8; ++j) {
      const auto ls = static_cast<uint8_t>(std::min(63, nearest_int(inv_scale * scales[j])));
      const auto lm = static_cast<uint8_t>(std::min(63, nearest_int(inv_min * mins[j])));
      pack_scale_min_k4(b.scales, j, ls, lm);
    }
    b.d = f2h(max_scale / 63.f);
    b.dmin = f2h(max_min / 63.f);
  }
  // Final levels from the stored (rounded) scales.
  const float d_all = h2f(b.d), m_all = h2f(b.dmin);
  for (int j = 0; j < 8; ++j) {
    uint8_t sc, m;
    unpack_scale_min_k4(b.scales, j, &sc, &m);
    const float d = d_all * sc;
    if (!d) continue;
    const float dm = m_all * m;
    for (int i = 0; i < 32; ++i) {
      b.L[32 * j + i] =
          static_cast<uint8_t>(std::clamp(nearest_int((x[32 * j + i] + dm) / d), 0, nmax));
    }
  }
  return b;
}

}  // namespace lowbit::formats
