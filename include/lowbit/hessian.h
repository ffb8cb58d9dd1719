// The Hessian of a linear layer's reconstruction loss, H = 2/N·Σ x xᵀ over the N
// calibration inputs x of that layer (GPTQ's add_batch). Batches are multiplied by BLAS
// SYRK in float32 and summed in float64. Also the output error ‖X(Q − W)ᵀ‖² methods are
// judged by. Not GPTQ itself (gptq.h).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace lowbit {

class HessianAccumulator {
 public:
  explicit HessianAccumulator(int64_t cols);
  // x: (T, cols) row-major, T calibration tokens.
  void add(const float* x, int64_t T);
  int64_t cols() const { return cols_; }
  int64_t tokens() const { return tokens_; }
  // (cols, cols), both triangles: 2/N·Σ x xᵀ (all zero before any token).
  std::vector<double> hessian() const;

 private:
  int64_t cols_;
  int64_t tokens_ = 0;
  std::vector<double> sum_;   // Σ x xᵀ, upper triangle (row-major, i <= j)
  std::vector<float> batch_;  // SYRK output of one batch
};

// ‖X(Q − W)ᵀ‖²: x: (T, cols), w and q: (rows, cols); float32 products summed in float64.
double output_sq_error(std::span<const float> x, int64_t T, std::span<const float> w, std::span<const float> q,
                       int64_t rows, int64_t cols);

}  // namespace lowbit
