// The linear layer's drivers: y = x · wᵀ for weights in any format, multithreaded over
// rows. Formats with an int8 path quantize the activations once (Q8Rows); decode runs the
// kernel table's fused kernel (or unpack + dot_u8_q8) over up to 4 tokens per weight-row
// read, and prefill unpacks 16 rows into a panel and runs the panel kernel over all tokens. Float formats decode rows
// and use dot_f32 for decode, and SGEMM on decoded panels for prefill. matmul_ref
// (layers.cpp) is the oracle.

#include <algorithm>
#include <memory>
#include <vector>

#include "lowbit/blas_setup.h"
#include "lowbit/engine.h"
#include "lowbit/kernels.h"
#include "model/layers.h"
#include "core/sgemm_tiles.h"

namespace lowbit {
namespace {

constexpr int64_t kTokensPerCall = 4;   // activation rows per kernel call
constexpr int64_t kTokenTile = 32;      // activation rows whose Q8 data stays in cache together

// y: (T, rows) by the int8 path; xq: the T activation rows, quantized.
void matmul_q8(const Weight& w, const WeightKernels& k, const Q8Rows& xq, int64_t T, float* y) {
  const IsaKernels& isa = active_isa();
  const int64_t rows = w.rows, cols = w.cols, padded = xq.padded;
  const uint64_t row_bytes = format_row_bytes(*w.format, cols);
  std::vector<Q8RowView> views(static_cast<size_t>(T));
  for (int64_t t = 0; t < T; ++t) views[t] = xq.row(t);
  for (int64_t t0 = 0; t0 < T; t0 += kTokenTile) {
    const int64_t t1 = std::min(T, t0 + kTokenTile);
#pragma omp parallel if (rows * cols * (t1 - t0) >= (1 << 15))
    {
      std::vector<uint8_t> u(k.fused_dot ? 0 : padded);
      std::vector<float> a(k.fused_dot ? 0 : padded / kQ8Sub), b(a.size());
      float out[kTokensPerCall];
#pragma omp for schedule(static)
      for (int64_t r = 0; r < rows; ++r) {
        const uint8_t* row = w.data.data() + r * row_bytes;
        if (!k.fused_dot) k.unpack_u8(row, cols, u.data(), a.data(), b.data());
        for (int64_t t = t0; t < t1; t += kTokensPerCall) {
          const int nt = static_cast<int>(std::min(kTokensPerCall, t1 - t));
          if (k.fused_dot) {
            k.fused_dot(row, cols, views.data() + t, nt, out);
          } else {
            isa.dot_u8_q8({u.data(), a.data(), b.data()}, padded, views.data() + t, nt, out);
          }
          for (int n = 0; n < nt; ++n) y[(t + n) * rows + r] = out[n];
        }
      }
    }
  }
}

// Prefill by panels: each thread unpacks 16 rows at a time, interleaves them (Panel16) and
// runs the set's panel kernel over every token, 4 at a time. y: (T, rows).
void gemm_q8_panels(const Weight& w, const WeightKernels& k, const Q8Rows& xq, int64_t T, float* y) {
  const IsaKernels& isa = active_isa();
  const int64_t rows = w.rows, cols = w.cols, padded = xq.padded, n_panels = (rows + kPanelRows - 1) / kPanelRows;
  const uint64_t row_bytes = format_row_bytes(*w.format, cols);
  std::vector<Q8RowView> views(static_cast<size_t>(T));
  for (int64_t t = 0; t < T; ++t) views[t] = xq.row(t);
#pragma omp parallel
  {
    std::vector<uint8_t> ru(static_cast<size_t>(kPanelRows * padded)), pu(ru.size());
    std::vector<float> ra(static_cast<size_t>(kPanelRows * padded / kQ8Sub)), rb(ra.size()), pa(ra.size()), pb(ra.size());
    U8RowView unpacked[kPanelRows];
    float out[kTokensPerCall * kPanelRows];
#pragma omp for schedule(dynamic, 1)
    for (int64_t p = 0; p < n_panels; ++p) {
      const int64_t r0 = p * kPanelRows;
      const int n_rows = static_cast<int>(std::min(kPanelRows, rows - r0));
      for (int r = 0; r < n_rows; ++r) {
        uint8_t* u = ru.data() + r * padded;
        float* a = ra.data() + r * (padded / kQ8Sub);
        float* b = rb.data() + r * (padded / kQ8Sub);
        k.unpack_u8(w.data.data() + (r0 + r) * row_bytes, cols, u, a, b);
        unpacked[r] = {u, a, b};
      }
      interleave_panel16(unpacked, n_rows, padded, pu.data(), pa.data(), pb.data());
      for (int64_t t = 0; t < T; t += kTokensPerCall) {
        const int nt = static_cast<int>(std::min(kTokensPerCall, T - t));
        isa.gemm_panel16({pu.data(), pa.data(), pb.data()}, padded, views.data() + t, nt, out);
        for (int n = 0; n < nt; ++n) {
          for (int r = 0; r < n_rows; ++r) y[(t + n) * rows + r0 + r] = out[n * kPanelRows + r];
        }
      }
    }
  }
}

// Decode through the float path: the set's fused kernel on the row's bytes, or each row
// decoded once (or read in place) and T dot products.
void matvec_f32(const Weight& w, const WeightKernels& k, const float* x, int64_t T, float* y) {
  const IsaKernels& isa = active_isa();
  const int64_t rows = w.rows, cols = w.cols;
  if (k.fused_f32.fn) {
    const uint64_t row_bytes = format_row_bytes(*w.format, cols);
    thread_local std::vector<float> arranged;  // the activations in the kernel's order
    if (k.fused_f32.arrange) {
      arranged.resize(static_cast<size_t>(T * cols));
      for (int64_t t = 0; t < T; ++t) k.fused_f32.arrange(x + t * cols, cols, arranged.data() + t * cols);
      x = arranged.data();
    }
#pragma omp parallel for schedule(static) if (rows * cols * T >= (1 << 15))
    for (int64_t r = 0; r < rows; ++r) {
      float out[kTokensPerCall];
      for (int64_t t = 0; t < T; t += kTokensPerCall) {
        const int nt = static_cast<int>(std::min(kTokensPerCall, T - t));
        k.fused_f32.fn(w.data.data() + r * row_bytes, cols, x + t * cols, nt, out);
        for (int n = 0; n < nt; ++n) y[(t + n) * rows + r] = out[n];
      }
    }
    return;
  }
  matmul_decoded(w, x, T, y, isa.dot_f32);
}

// Prefill through the float path: SGEMM on panels of rows decoded to f32 (about 16 MiB).
void gemm_f32(const Weight& w, const float* x, int64_t T, float* y) {
  const int64_t rows = w.rows, cols = w.cols;
  ensure_blas_kernels();
  if (f32_in_place(w)) {
    sgemm_tiles(false, true, T, rows, cols, 1.0f, x, cols, reinterpret_cast<const float*>(w.data.data()), cols, 0.0f, y, rows);
    return;
  }
  const int64_t panel_rows = std::clamp<int64_t>((int64_t{1} << 22) / cols, 1, rows);
  std::vector<float> panel(static_cast<size_t>(panel_rows * cols));
  for (int64_t r0 = 0; r0 < rows; r0 += panel_rows) {
    const int64_t n = std::min(panel_rows, rows - r0);
#pragma omp parallel for schedule(static) if (n * cols >= (1 << 15))
    for (int64_t r = 0; r < n; ++r) w.row_to_f32(r0 + r, panel.data() + r * cols);
    sgemm_tiles(false, true, T, n, cols, 1.0f, x, cols, panel.data(), cols, 0.0f, y + r0, rows);
  }
}

}  // namespace

RepackedWeight repack_weight(const Weight& w) {
  RepackedWeight out;
  if (w.format->to_row_local_twin) {
    const Format& twin = format_by_name(w.format->row_local_twin);
    auto bytes = std::make_shared<std::vector<uint8_t>>(twin.tensor_bytes(w.rows, w.cols));
    w.format->to_row_local_twin(w.data.data(), w.rows, w.cols, bytes->data());
    out.twin = std::make_shared<const Weight>(Weight{w.name, &twin, w.rows, w.cols, *bytes, bytes});
    return out;
  }
  const WeightKernels& k = weight_kernels(*w.format);
  if (!k.repack || w.cols % k.repack->cols_multiple != 0) return out;
  out.kernels = k.repack;
  out.bytes.resize(k.repack->bytes(w.rows, w.cols));
  k.repack->repack(w.data.data(), w.rows, w.cols, out.bytes.data());
  return out;
}

void matmul_repacked(const Weight& w, const RepackedWeight& packed, const float* x, int64_t T, float* y) {
  thread_local Q8Rows xq;
  quantize_q8_rows(x, T, w.cols, xq);
  const int64_t rows = w.rows, groups = (rows + kPanelRows - 1) / kPanelRows;
  std::vector<Q8RowView> views(static_cast<size_t>(T));
  for (int64_t t = 0; t < T; ++t) views[t] = xq.row(t);
#pragma omp parallel for schedule(static) if (rows * w.cols * T >= (1 << 15))
  for (int64_t g = 0; g < groups; ++g) {
    const int n_rows = static_cast<int>(std::min(kPanelRows, rows - g * kPanelRows));
    float out[kTokensPerCall * kPanelRows];
    for (int64_t t = 0; t < T; t += kTokensPerCall) {
      const int nt = static_cast<int>(std::min(kTokensPerCall, T - t));
      packed.kernels->dot(packed.bytes.data(), g, w.cols, views.data() + t, nt, out);
      for (int n = 0; n < nt; ++n) {
        for (int r = 0; r < n_rows; ++r) y[(t + n) * rows + g * kPanelRows + r] = out[n * kPanelRows + r];
      }
    }
  }
}

void matmul(const Weight& w, const float* x, int64_t T, float* y) {
  const WeightKernels& k = weight_kernels(*w.format);
  if (k.act == ActFormat::kQ8) {
    thread_local Q8Rows xq;  // reused across calls: no allocation per token
    quantize_q8_rows(x, T, w.cols, xq);
    if (T >= kGemmMinTokens && active_isa().gemm_panel16) return gemm_q8_panels(w, k, xq, T, y);
    return matmul_q8(w, k, xq, T, y);
  }
  if (T < kGemmMinTokens) return matvec_f32(w, k, x, T, y);
  gemm_f32(w, x, T, y);
}

}  // namespace lowbit
