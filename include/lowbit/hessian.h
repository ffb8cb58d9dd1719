// The Hessian of a linear layer's reconstruction loss, H = 2/N·Σ x xᵀ over the N
// calibration inputs x of that layer (GPTQ's add_batch). Inputs are staged and multiplied
// by BLAS (SGEMM) in float32 every kStageTokens tokens, and the products summed in float64. Also the output error ‖X(Q − W)ᵀ‖² methods are
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
  // (cols, cols), both triangles: 2/N·Σ x xᵀ (all zero before any token). Hands over the
  // accumulator's own float64 sums (no second n² buffer); add() throws afterwards.
  std::vector<double> take_hessian();

 private:
  static constexpr int64_t kStageTokens = 2048;
  int64_t cols_;
  int64_t tokens_ = 0, staged_ = 0;
  bool taken_ = false;
  std::vector<double> sum_;      // Σ x xᵀ, upper triangle (row-major, i <= j)
  std::vector<float> product_;   // SYRK result of one stage
  std::vector<float> stage_;     // (kStageTokens, cols) inputs not multiplied yet
  void multiply_staged();
};

// ‖X(Q − W)ᵀ‖²: x: (T, cols), w and q: (rows, cols); float32 products summed in float64.
double output_sq_error(std::span<const float> x, int64_t T, std::span<const float> w, std::span<const float> q,
                       int64_t rows, int64_t cols);

}  // namespace lowbit
