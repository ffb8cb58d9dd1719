// Scale/min search for q4_k and q5_k super-blocks, following ggml's quantize_row_q4_K_ref
// (no importance) and quantize_row_q4_K_impl (with importance).
#include "formats/kquant_affine.h"

#include <algorithm>
#include <cstring>

#include "formats/format_impl.h"
#include "formats/kquant_scales.h"
#include "formats/scale_search.h"

namespace lowbit::formats {

namespace {

// The super-block's 6-bit sub-scales/mins and super-scales from the searched ones, then the
// final levels from the stored (rounded) scales.
void finish_superblock(const float* x, const float* importance, int nmax, const float* scales, const float* mins,
                       const float* sw, AffineSuperBlock& b) {
  if (importance) {
    uint8_t Ls[8], Lm[8];
    b.d = f2h(positive_scale_search(8, 63, scales, Ls, sw));
    b.dmin = f2h(positive_scale_search(8, 63, mins, Lm, sw));
    for (int j = 0; j < 8; ++j) pack_scale_min_k4(b.scales, j, Ls[j], Lm[j]);
  } else {
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; ++j) {
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
}

}  // namespace

void quantize_affine_superblocks(const float* x, const float* importance, int nmax, int count, AffineSuperBlock* out) {
  constexpr int kSubs = 8 * kAffineBatch;
  float weights[kSubs * 32], scales[kSubs], mins[kSubs], sw[kSubs];
  uint8_t L[kSubs * 32];
  for (int first = 0; first < count; first += kAffineBatch) {
    const int n_super = std::min(kAffineBatch, count - first);
    const float* xs = x + first * 256;
    // Weights of every sub-block: with importance ggml's importance_weights over the
    // super-block's 2·sigma^2; plain, av_x + |x| per sub-block.
    for (int s = 0; s < n_super; ++s) {
      const float* xb = xs + 256 * s;
      if (importance) {
        const float sigma2 = 2 * mean_square(xb, 256);
        for (int j = 0; j < 8; ++j) {
          float* w = weights + 32 * (8 * s + j);
          importance_weights(xb + 32 * j, importance + (first + s) * 256 + 32 * j, sigma2, 32, w);
          sw[8 * s + j] = 0;
          for (int l = 0; l < 32; ++l) sw[8 * s + j] += w[l];
        }
      } else {
        for (int j = 0; j < 8; ++j) {
          float sum_x2 = 0;
          for (int l = 0; l < 32; ++l) sum_x2 += xb[32 * j + l] * xb[32 * j + l];
          const float av_x = std::sqrt(sum_x2 / 32);
          for (int l = 0; l < 32; ++l) weights[32 * (8 * s + j) + l] = av_x + std::fabs(xb[32 * j + l]);
        }
      }
    }
    // With importance 37 steps from -0.9; plain, nmax 15 searches 21 steps from -1 and nmax
    // 31 16 steps from -0.5 (ggml's q4_K and q5_K settings).
    const float rmin = importance ? -0.9f : nmax == 15 ? -1.0f : -0.5f;
    const float rdelta = importance ? 0.05f : 0.1f;
    const int nstep = importance ? 36 : nmax == 15 ? 20 : 15;
    affine_scale_search_many(8 * n_super, 32, nmax, xs, weights, L, scales, mins, rmin, rdelta, nstep, false);
    for (int s = 0; s < n_super; ++s) {
      AffineSuperBlock& b = out[first + s];
      b = AffineSuperBlock{};
      std::memcpy(b.L, L + 256 * s, 256);
      finish_superblock(xs + 256 * s, importance, nmax, scales + 8 * s, mins + 8 * s, sw + 8 * s, b);
    }
  }
}

AffineSuperBlock quantize_affine_superblock(const float* x, const float* importance, int nmax) {
  AffineSuperBlock b;
  quantize_affine_superblocks(x, importance, nmax, 1, &b);
  return b;
}

}  // namespace lowbit::formats
