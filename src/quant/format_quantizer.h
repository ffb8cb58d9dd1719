// GPTQ's rounding through a format of the table: each block's parameters are fitted when
// GPTQ reaches the block (from the error-updated weights, with the Hessian diagonal as
// importance, as the imatrix is used), and values are rounded one column at a time under
// them (the format's FitRound steps). The result is the format's bytes.
#pragma once

#include <span>
#include <vector>

#include "lowbit/format.h"
#include "lowbit/gptq.h"

namespace lowbit {

class FormatQuantizer final : public GptqQuantizer {
 public:
  // w: (rows, cols), the original weight (its row mean squares feed the legacy formats'
  // importance weighting). Throws Error when the format has no FitRound steps or cols do
  // not fit it.
  FormatQuantizer(const Format& format, int64_t rows, int64_t cols, std::span<const float> w);
  int64_t group_size() const override { return block_; }
  bool groups_are_storage_blocks() const override { return true; }
  void fit(int64_t group, std::span<const float* const> columns, const float* importance) override;
  void round(int64_t group, int64_t offset, const float* w, float* q) override;
  // The quantized tensor, tensor_bytes(rows, cols).
  std::vector<uint8_t> take_bytes() { return std::move(bytes_); }

 private:
  const Format& format_;
  const FitRound& steps_;
  int64_t rows_, cols_, block_;  // block_: elements per block (0: one per row)
  uint64_t row_bytes_, block_bytes_;
  std::vector<uint8_t> bytes_;
  std::vector<float> aux_;        // (rows, blocks per row, aux_floats)
  std::vector<float> row_mean_square_;
  uint8_t* block_at(int64_t row, int64_t group) { return bytes_.data() + row * row_bytes_ + group * block_bytes_; }
  float* aux_at(int64_t row, int64_t group);
};

// Round-to-nearest of a whole tensor through the same two steps (for tests: it must give
// the bytes of format.quantize).
std::vector<uint8_t> fit_round_tensor(const Format& format, std::span<const float> w, int64_t rows, int64_t cols,
                                      const float* importance);

}  // namespace lowbit
