// The scalar reference of the format-independent kernels: activation quantization, the
// u8 x q8 dot of an unpacked row, and the fp32 dot. The oracle the SIMD sets are tested
// against, and the fallback on CPUs without them.
#include <algorithm>
#include <cmath>

#include "kernels/kernel_impl.h"
#include "lowbit/cpu_features.h"

namespace lowbit {
namespace kernels {
namespace {

// x: (cols) → q: (padded), d_lane: (padded/4), sum: (padded/16). Per sub-block of 16:
// d = absmax / 127, q = round-to-nearest-even(x * (127 / absmax)).
void quantize_q8_ref(const float* x, int64_t cols, int8_t* q, float* d_lane, float* sum) {
  const int64_t padded = q8_padded(cols);
  for (int64_t s = 0; s < padded / kQ8Sub; ++s) {
    const int64_t i0 = s * kQ8Sub, n = std::max<int64_t>(0, std::min(kQ8Sub, cols - i0));
    float amax = 0;
    for (int64_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(x[i0 + i]));
    const float d = amax / 127.0f, id = amax > 0 ? 127.0f / amax : 0.0f;
    int isum = 0;
    for (int64_t i = 0; i < kQ8Sub; ++i) {
      const float v = i < n ? std::nearbyint(x[i0 + i] * id) : 0.0f;
      const int qi = static_cast<int>(std::fmin(127.0f, std::fmax(-127.0f, v)));
      q[i0 + i] = static_cast<int8_t>(qi);
      isum += qi;
    }
    for (int k = 0; k < 4; ++k) d_lane[4 * s + k] = d;
    sum[s] = d * static_cast<float>(isum);
  }
}

// y[n] = Σ_s (a_s d_s Σ u q + b_s sum_s) over the sub-blocks of the padded row.
void dot_u8_q8_ref(U8RowView w, int64_t padded, const Q8RowView* xs, int nt, float* y) {
  for (int n = 0; n < nt; ++n) {
    float acc = 0;
    for (int64_t s = 0; s < padded / kQ8Sub; ++s) {
      int32_t isum = 0;
      for (int64_t i = s * kQ8Sub; i < (s + 1) * kQ8Sub; ++i) isum += int32_t{w.u[i]} * xs[n].q[i];
      acc += w.a[s] * xs[n].d_lane[4 * s] * static_cast<float>(isum) + w.b[s] * xs[n].sum[s];
    }
    y[n] = acc;
  }
}

// y[n][r] = Σ_s (a[s][r] d_s Σ u q + b[s][r] sum_s), the panel read back row by row.
void gemm_panel16_ref(const Panel16View& w, int64_t padded, const Q8RowView* xs, int nt, float* y) {
  for (int n = 0; n < nt; ++n) {
    for (int r = 0; r < kPanelRows; ++r) {
      float acc = 0;
      for (int64_t s = 0; s < padded / kQ8Sub; ++s) {
        int32_t isum = 0;
        for (int j = 0; j < 4; ++j) {
          for (int e = 0; e < 4; ++e) isum += int32_t{w.u[((s * 4 + j) * kPanelRows + r) * 4 + e]} * xs[n].q[16 * s + 4 * j + e];
        }
        acc += w.a[s * kPanelRows + r] * xs[n].d_lane[4 * s] * static_cast<float>(isum) + w.b[s * kPanelRows + r] * xs[n].sum[s];
      }
      y[n * kPanelRows + r] = acc;
    }
  }
}

constexpr IsaKernels kRef{"ref", &quantize_q8_ref, &dot_u8_q8_ref, &dot_f32_ref, &gemm_panel16_ref, nullptr, &swiglu_ref, &softmax_ref, &dot_rows_ref, &weighted_sum_ref, &rope_ref, &w8a8_tile_ref};

}  // namespace

const IsaEntry& ref_isa() {
  static const IsaEntry entry{&kRef, {}, {}, {}, {}, [] { return true; }};
  return entry;
}

}  // namespace kernels

// Eight partial sums, combined pairwise (the reference matmul and attention use it too).
float dot_f32_ref(const float* a, const float* b, int64_t n) {
  float acc[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int k = 0; k < 8; ++k) acc[k] += a[i + k] * b[i + k];
  }
  float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

const IsaKernels& ref_kernels() { return kernels::kRef; }

void softmax_ref(float* x, int64_t n) {
  float max = -INFINITY;
  for (int64_t i = 0; i < n; ++i) max = std::max(max, x[i]);
  float sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - max);
    sum += x[i];
  }
  const float inv = 1.0f / sum;
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void dot_rows_ref(const float* x, int64_t xs, int nq, const float* rows, int64_t stride, int64_t n_rows, int64_t n,
                  float* out, int64_t os) {
  for (int q = 0; q < nq; ++q) {
    for (int64_t r = 0; r < n_rows; ++r) out[q * os + r] = dot_f32_ref(x + q * xs, rows + r * stride, n);
  }
}

void weighted_sum_ref(const float* w, int64_t ws, int nq, const float* rows, int64_t stride, int64_t n_rows, int64_t n,
                      float* out, int64_t os) {
  for (int q = 0; q < nq; ++q) {
    float* o = out + q * os;
    std::fill(o, o + n, 0.0f);
    for (int64_t r = 0; r < n_rows; ++r) {
      for (int64_t i = 0; i < n; ++i) o[i] += w[q * ws + r] * rows[r * stride + i];
    }
  }
}

void rope_ref(float* x, int64_t n_heads, int64_t head_dim, bool adjacent_pairs, const float* cos, const float* sin) {
  const int64_t half = head_dim / 2;
  for (int64_t h = 0; h < n_heads; ++h) {
    float* v = x + h * head_dim;
    for (int64_t i = 0; i < half; ++i) {
      const int64_t a = adjacent_pairs ? 2 * i : i, b = adjacent_pairs ? 2 * i + 1 : i + half;
      const float x0 = v[a], x1 = v[b];
      v[a] = x0 * cos[i] - x1 * sin[i];
      v[b] = x0 * sin[i] + x1 * cos[i];
    }
  }
}

void swiglu_ref(float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) gate[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

}  // namespace lowbit
