// Hessian accumulation by BLAS and the layer output error (see lowbit/hessian.h).
#include "lowbit/hessian.h"


#include <algorithm>

#include "lowbit/blas_setup.h"
#include "lowbit/error.h"
#include "core/sgemm_tiles.h"

namespace lowbit {

HessianAccumulator::HessianAccumulator(int64_t cols)
    : cols_(cols), sum_(static_cast<size_t>(cols * cols), 0.0), product_(static_cast<size_t>(cols * cols)),
      stage_(static_cast<size_t>(kStageTokens * cols)) {
  if (cols <= 0) throw Error("Hessian: columns must be positive", {.value = std::to_string(cols)});
}

void HessianAccumulator::add(const float* x, int64_t T) {
  if (taken_) throw Error("Hessian accumulator: add() after take_hessian()");
  // Rows are staged until kStageTokens are there: one product with many tokens runs near
  // the GEMM peak, where small ones are bound by writing the (cols, cols) result.
  while (T > 0) {
    const int64_t n = std::min(T, kStageTokens - staged_);
    std::copy_n(x, n * cols_, stage_.data() + staged_ * cols_);
    staged_ += n;
    tokens_ += n;
    x += n * cols_;
    T -= n;
    if (staged_ == kStageTokens) multiply_staged();
  }
}

// sum += stageᵀ·stage: (cols, cols) from stage: (staged, cols) in float32, added into
// float64 (upper triangle). SGEMM rather than SSYRK: it computes both triangles, twice the
// FLOPs, yet OpenBLAS 0.3.21 runs it 4.6x faster (5632 columns, 2048 tokens, 2 cores:
// SSYRK 47 GFLOP/s, SGEMM 218), so it finishes in half the time.
void HessianAccumulator::multiply_staged() {
  if (staged_ == 0) return;
  ensure_blas_kernels();
  sgemm_tiles(true, false, cols_, cols_, staged_, 1.0f, stage_.data(), cols_, stage_.data(), cols_, 0.0f, product_.data(), cols_);
#pragma omp parallel for schedule(static) if (cols_ >= 256)
  for (int64_t i = 0; i < cols_; ++i) {
    for (int64_t j = i; j < cols_; ++j) sum_[i * cols_ + j] += product_[i * cols_ + j];
  }
  staged_ = 0;
}

std::vector<double> HessianAccumulator::take_hessian() {
  multiply_staged();
  stage_ = {};
  product_ = {};
  std::vector<double> h = std::move(sum_);
  h.resize(static_cast<size_t>(cols_ * cols_), 0.0);
  const double scale = tokens_ == 0 ? 0.0 : 2.0 / static_cast<double>(tokens_);
  for (int64_t i = 0; i < cols_; ++i) {
    for (int64_t j = i; j < cols_; ++j) h[i * cols_ + j] = h[j * cols_ + i] = scale * h[i * cols_ + j];
  }
  taken_ = true;
  return h;
}

double output_sq_error(std::span<const float> x, int64_t T, std::span<const float> w, std::span<const float> q,
                       int64_t rows, int64_t cols) {
  ensure_blas_kernels();
  std::vector<float> d(static_cast<size_t>(rows * cols));
  for (size_t i = 0; i < d.size(); ++i) d[i] = q[i] - w[i];
  std::vector<float> e(static_cast<size_t>(T * rows));  // e: (T, rows) = x · dᵀ
  sgemm_tiles(false, true, T, rows, cols, 1.0f, x.data(), cols, d.data(), cols, 0.0f, e.data(), rows);
  double sum = 0;
  for (float v : e) sum += static_cast<double>(v) * v;
  return sum;
}

}  // namespace lowbit
