// Weighted scale searches for block quantizers (see scale_search.h for the contracts).
#include "formats/scale_search.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "formats/format_impl.h"
#include "lowbit/kernels.h"

namespace lowbit::formats {
namespace {

float element_weight(const float* weights, ElementWeight fallback, const float* x, int i) {
  if (weights) return weights[i];
  switch (fallback) {
    case ElementWeight::kSquare: return x[i] * x[i];
    case ElementWeight::kUnit: return 1.0f;
    case ElementWeight::kAbs: return std::fabs(x[i]);
    case ElementWeight::kSqrtAbs: return std::sqrt(std::fabs(x[i]));
  }
  return 1.0f;
}

// The signed value of largest magnitude (first one on ties).
float signed_absmax(int n, const float* x, float* amax_out) {
  float amax = 0, max = 0;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  *amax_out = amax;
  return max;
}

int clamp_level(int l, int lo, int hi) { return std::max(lo, std::min(hi, l)); }

}  // namespace

float mean_square(const float* x, int64_t n) {
  float sum = 0;
  for (int64_t j = 0; j < n; ++j) sum += x[j] * x[j];
  return sum / n;
}

void importance_weights(const float* x, const float* importance, float sigma2, int n, float* w) {
  for (int j = 0; j < n; ++j) w[j] = importance[j] * std::sqrt(sigma2 + x[j] * x[j]);
}

float symmetric_scale_search(int n, int nmax, const float* x, int8_t* L, const float* weights,
                             ElementWeight fallback, float* chosen_iscale) {
  float amax;
  const float max = signed_absmax(n, x, &amax);
  if (chosen_iscale) *chosen_iscale = 0.0f;
  if (amax < kGroupMaxEps) {
    std::memset(L, 0, n);
    return 0.0f;
  }
  // Least-squares fit of the scale for the levels produced by inverse scale `iscale`.
  auto fit = [&](float iscale, float* sumlx, float* suml2) {
    *sumlx = *suml2 = 0;
    for (int i = 0; i < n; ++i) {
      const int l = clamp_level(nearest_int(iscale * x[i]), -nmax, nmax - 1);
      const float w = element_weight(weights, fallback, x, i);
      *sumlx += w * x[i] * l;
      *suml2 += w * l * l;
    }
  };
  auto assign = [&](float iscale) {
    for (int i = 0; i < n; ++i) {
      L[i] = static_cast<int8_t>(nmax + clamp_level(nearest_int(iscale * x[i]), -nmax, nmax - 1));
    }
  };
  float sumlx, suml2;
  float iscale = -nmax / max;
  fit(iscale, &sumlx, &suml2);
  assign(iscale);
  if (chosen_iscale) *chosen_iscale = iscale;
  float scale = suml2 ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int step = -9; step <= 9; ++step) {
    if (step == 0) continue;
    iscale = -(nmax + 0.1f * step) / max;
    fit(iscale, &sumlx, &suml2);
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      assign(iscale);
      if (chosen_iscale) *chosen_iscale = iscale;
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

float symmetric_scale_refine(int n, int nmax, const float* x, int8_t* L) {
  float amax;
  const float max = signed_absmax(n, x, &amax);
  if (amax < kGroupMaxEps) {
    std::memset(L, 0, n);
    return 0.0f;
  }
  const float iscale = -nmax / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = clamp_level(nearest_int(iscale * x[i]), -nmax, nmax - 1);
    L[i] = static_cast<int8_t>(l);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * l;
    suml2 += w * l * l;
  }
  for (int pass = 0; pass < 5; ++pass) {
    int changed = 0;
    for (int i = 0; i < n; ++i) {
      const float w = x[i] * x[i];
      float slx = sumlx - w * x[i] * L[i];
      if (slx <= 0) continue;
      float sl2 = suml2 - w * L[i] * L[i];
      const int new_l = clamp_level(nearest_int(x[i] * sl2 / slx), -nmax, nmax - 1);
      if (new_l == L[i]) continue;
      slx += w * x[i] * new_l;
      sl2 += w * new_l * new_l;
      if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
        L[i] = static_cast<int8_t>(new_l);
        sumlx = slx;
        suml2 = sl2;
        ++changed;
      }
    }
    if (!changed) break;
  }
  for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(L[i] + nmax);
  return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

float affine_scale_search(int n, int nmax, const float* x, const float* weights, uint8_t* L,
                          float* min_out, float rmin, float rdelta, int nstep, bool use_mad) {
  auto weight = [&](int i) { return weights ? weights[i] : x[i] * x[i]; };
  float min = x[0], max = x[0];
  float sum_w = 0, sum_x = 0;
  for (int i = 0; i < n; ++i) {
    min = std::min(min, x[i]);
    max = std::max(max, x[i]);
    sum_w += weight(i);
    sum_x += weight(i) * x[i];
  }
  if (min > 0) min = 0;
  if (max <= min) {
    std::memset(L, 0, n);
    *min_out = -min;
    return 0.0f;
  }
  auto error_of = [&](const uint8_t* levels, float scale, float offset) {
    float err = 0;
    for (int i = 0; i < n; ++i) {
      const float diff = scale * levels[i] + offset - x[i];
      err += weight(i) * (use_mad ? std::fabs(diff) : diff * diff);
    }
    return err;
  };
  float iscale = nmax / (max - min);
  float scale = 1 / iscale;
  for (int i = 0; i < n; ++i) {
    L[i] = static_cast<uint8_t>(clamp_level(nearest_int(iscale * (x[i] - min)), 0, nmax));
  }
  float best_error = error_of(L, scale, min);
  uint8_t candidate[256];
  for (int step = 0; step <= nstep; ++step) {
    iscale = (rmin + rdelta * step + nmax) / (max - min);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      // min is the best fit so far and may sit near max: guard the rounding's range.
      const float v = iscale * (x[i] - min);
      const int l = v > 0 ? nearest_int(std::min(v, static_cast<float>(nmax))) : 0;
      candidate[i] = static_cast<uint8_t>(l);
      const float w = weight(i);
      sum_l += w * l;
      sum_l2 += w * l * l;
      sum_xl += w * l * x[i];
    }
    const float det = sum_w * sum_l2 - sum_l * sum_l;
    if (det <= 0) continue;
    float this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
    float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
    if (this_min > 0) {
      this_min = 0;
      this_scale = sum_xl / sum_l2;
    }
    const float err = error_of(candidate, this_scale, this_min);
    if (err < best_error) {
      std::memcpy(L, candidate, n);
      best_error = err;
      scale = this_scale;
      min = this_min;
    }
  }
  *min_out = -min;
  return scale;
}

namespace {
bool lanes_on() {
  static const bool on = active_isa().name == "avx512";
  return on;
}
}  // namespace

void symmetric_scale_search_many(int count, int n, int nmax, const float* x, const float* weights, int8_t* L,
                                 float* scale_out) {
  for (int g = 0; g < count; g += 16) {
    const int lanes = std::min(16, count - g);
    const float* w = weights ? weights + g * n : nullptr;
    if (lanes_on() && n <= 32) {
      symmetric_scale_search_x16(lanes, n, nmax, x + g * n, w, L + g * n, scale_out + g);
      continue;
    }
    for (int k = 0; k < lanes; ++k) {
      scale_out[g + k] = symmetric_scale_search(n, nmax, x + (g + k) * n, L + (g + k) * n, w ? w + k * n : nullptr);
    }
  }
}

void affine_scale_search_many(int count, int n, int nmax, const float* x, const float* weights, uint8_t* L,
                              float* scale_out, float* min_out, float rmin, float rdelta, int nstep, bool use_mad) {
  for (int g = 0; g < count; g += 16) {
    const int lanes = std::min(16, count - g);
    const float* w = weights ? weights + g * n : nullptr;
    if (lanes_on() && n <= 32) {
      affine_scale_search_x16(lanes, n, nmax, x + g * n, w, L + g * n, scale_out + g, min_out + g, rmin, rdelta, nstep,
                              use_mad);
      continue;
    }
    for (int k = 0; k < lanes; ++k) {
      scale_out[g + k] = affine_scale_search(n, nmax, x + (g + k) * n, w ? w + k * n : nullptr, L + (g + k) * n,
                                             &min_out[g + k], rmin, rdelta, nstep, use_mad);
    }
  }
}

float positive_scale_search(int n, int nmax, const float* x, uint8_t* L, const float* weights) {
  float max = 0;
  for (int i = 0; i < n; ++i) max = std::max(max, x[i]);
  if (max < kGroupMaxEps) {
    std::memset(L, 0, n);
    return 0.0f;
  }
  auto weighted_error = [&](float iscale) {
    const float scale = 1 / iscale;
    float mse = 0;
    for (int i = 0; i < n; ++i) {
      const int l = std::min(nmax, nearest_int(iscale * x[i]));
      const float diff = x[i] - scale * l;
      mse += weights[i] * diff * diff;
    }
    return mse;
  };
  float iscale = nmax / max;
  float best_mse = weighted_error(iscale);
  for (int step = -4; step <= 4; ++step) {
    if (step == 0) continue;
    const float candidate = (0.1f * step + nmax) / max;
    const float mse = weighted_error(candidate);
    if (mse < best_mse) {
      best_mse = mse;
      iscale = candidate;
    }
  }
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = std::min(nmax, nearest_int(iscale * x[i]));
    L[i] = static_cast<uint8_t>(l);
    sumlx += weights[i] * x[i] * l;
    suml2 += weights[i] * l * l;
  }
  for (int pass = 0; pass < 5; ++pass) {
    int changed = 0;
    for (int i = 0; i < n; ++i) {
      const float w = weights[i];
      float slx = sumlx - w * x[i] * L[i];
      float sl2 = suml2 - w * L[i] * L[i];
      if (slx <= 0 || sl2 <= 0) continue;
      const int new_l = std::min(nmax, nearest_int(x[i] * sl2 / slx));
      if (new_l == L[i]) continue;
      slx += w * x[i] * new_l;
      sl2 += w * new_l * new_l;
      if (slx * slx * suml2 > sumlx * sumlx * sl2) {
        L[i] = static_cast<uint8_t>(new_l);
        sumlx = slx;
        suml2 = sl2;
        ++changed;
      }
    }
    if (!changed) break;
  }
  return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

int nearest_grid_index(const int8_t* grid, float v) {
  if (v <= grid[0]) return 0;
  if (v >= grid[15]) return 15;
  int lo = 0, hi = 15;
  while (hi - lo > 1) {
    const int mid = (lo + hi) / 2;
    if (v < grid[mid]) hi = mid; else lo = mid;
  }
  return v - grid[hi - 1] < grid[hi] - v ? hi - 1 : hi;
}

}  // namespace lowbit::formats
