// GPTQ (Frantar et al. 2022, "GPTQ: Accurate Post-Training Quantization for Generative
// Pre-trained Transformers"): one linear layer, given its weight W and the Hessian of its
// layer-wise loss H = 2/N·Σ x xᵀ, quantizes W column by column and spreads each column's
// error over the columns not yet quantized (Algorithm 1, with lazy batch updates and the
// Cholesky form of H⁻¹). Rounding is delegated to a GptqQuantizer, so GPTQ writes into any
// format: GPTQ's own min/max quantizer (the reference's quant.py) or a format of the table
// through its fit/round steps (src/quant/format_quantizer.h).
// Not the calibration driver (src/quant/calib/) and not a checkpoint writer.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace lowbit {

// Chooses parameters for groups of columns and rounds one column under them. Columns are
// handed over as contiguous vectors of `rows` values (GPTQ works on Wᵀ).
class GptqQuantizer {
 public:
  virtual ~GptqQuantizer() = default;
  // Columns per group (0: one group spans the whole row).
  virtual int64_t group_size() const = 0;
  // True when a group is a storage block in the original column order (block formats):
  // act-order then keeps groups in that order (static groups). GPTQ's own quantizer groups
  // the permuted columns, as the reference does.
  virtual bool groups_are_storage_blocks() const = 0;
  // Fits group `group`'s parameters for every row from its n current columns:
  // columns[i]: (rows), importance: (n) the Hessian diagonal of those columns.
  virtual void fit(int64_t group, std::span<const float* const> columns, const float* importance) = 0;
  // Rounds column `offset` of group `group`: w: (rows) -> q: (rows), the dequantized values.
  virtual void round(int64_t group, int64_t offset, const float* w, float* q) = 0;
};

struct GptqOptions {
  int64_t block_size = 128;     // lazy batch width
  double percdamp = 0.01;       // damping, a fraction of mean(diag H)
  double damp_increment = 0.01; // added to percdamp after each failed Cholesky (GPTQModel)
  double max_percdamp = 1.0;    // give up beyond this
  bool act_order = false;       // columns in descending diag(H)
  bool static_groups = false;   // fit every group on the original W before any update
};

struct GptqResult {
  std::vector<float> q;  // (rows, cols): the dequantized weight
  double percdamp = 0;   // the damping that made H positive definite
  int64_t dead_columns = 0;  // inputs with diag(H) == 0 (their weights are zeroed, as in the reference)
};

// w: (rows, cols) row-major; hessian: (cols, cols) symmetric, read only. Throws Error when
// H stays singular up to max_percdamp (the caller decides on a fallback).
GptqResult gptq_quantize(std::span<const float> w, int64_t rows, int64_t cols, std::span<const double> hessian,
                         GptqQuantizer& quantizer, const GptqOptions& options);

// GPTQ's quantizer (quant.py, perchannel, mse=False): per row and group, range [min(w, 0),
// max(w, 0)] (symmetric: ±max|w|, zero fixed at (maxq+1)/2; an all-zero range is [-1, 1]),
// scale = (max - min)/maxq in float32, zero = round(-min/scale); q = scale·(clamp(round(w/scale)
// + zero, 0, maxq) - zero). Also the plain RTN of the same quantizer (rtn()).
class GptqMinMaxQuantizer final : public GptqQuantizer {
 public:
  GptqMinMaxQuantizer(int bits, int64_t group_size, bool symmetric, int64_t rows);
  int64_t group_size() const override { return group_; }
  bool groups_are_storage_blocks() const override { return false; }
  void fit(int64_t group, std::span<const float* const> columns, const float* importance) override;
  void round(int64_t group, int64_t offset, const float* w, float* q) override;
  // Round-to-nearest of a whole (rows, cols) matrix, groups of group_size columns.
  std::vector<float> rtn(std::span<const float> w, int64_t cols);

 private:
  int maxq_;
  int64_t group_;
  bool sym_;
  int64_t rows_;
  std::vector<std::vector<float>> scale_, zero_;  // [group] (rows)
};

}  // namespace lowbit
