// Hessian accumulation by SYRK and the layer output error (see lowbit/hessian.h).
#include "lowbit/hessian.h"

#include <cblas.h>

#include "lowbit/error.h"

namespace lowbit {

HessianAccumulator::HessianAccumulator(int64_t cols)
    : cols_(cols), sum_(static_cast<size_t>(cols * cols), 0.0), batch_(static_cast<size_t>(cols * cols)) {
  if (cols <= 0) throw Error("Hessian: columns must be positive", {.value = std::to_string(cols)});
}

void HessianAccumulator::add(const float* x, int64_t T) {
  if (T <= 0) return;
  // batch = xᵀx, upper triangle: (cols, cols) from x: (T, cols).
  cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, static_cast<int>(cols_), static_cast<int>(T), 1.0f, x,
              static_cast<int>(cols_), 0.0f, batch_.data(), static_cast<int>(cols_));
#pragma omp parallel for schedule(static) if (cols_ >= 256)
  for (int64_t i = 0; i < cols_; ++i) {
    for (int64_t j = i; j < cols_; ++j) sum_[i * cols_ + j] += batch_[i * cols_ + j];
  }
  tokens_ += T;
}

std::vector<double> HessianAccumulator::hessian() const {
  std::vector<double> h(sum_.size(), 0.0);
  if (tokens_ == 0) return h;
  const double scale = 2.0 / static_cast<double>(tokens_);
  for (int64_t i = 0; i < cols_; ++i) {
    for (int64_t j = i; j < cols_; ++j) h[i * cols_ + j] = h[j * cols_ + i] = scale * sum_[i * cols_ + j];
  }
  return h;
}

double output_sq_error(std::span<const float> x, int64_t T, std::span<const float> w, std::span<const float> q,
                       int64_t rows, int64_t cols) {
  std::vector<float> d(static_cast<size_t>(rows * cols));
  for (size_t i = 0; i < d.size(); ++i) d[i] = q[i] - w[i];
  std::vector<float> e(static_cast<size_t>(T * rows));  // e: (T, rows) = x · dᵀ
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(T), static_cast<int>(rows), static_cast<int>(cols),
              1.0f, x.data(), static_cast<int>(cols), d.data(), static_cast<int>(cols), 0.0f, e.data(), static_cast<int>(rows));
  double sum = 0;
  for (float v : e) sum += static_cast<double>(v) * v;
  return sum;
}

}  // namespace lowbit
