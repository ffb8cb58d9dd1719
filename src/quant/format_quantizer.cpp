// GPTQ's rounding through a format's fit/round steps (see format_quantizer.h).
#include "quant/format_quantizer.h"

#include <string>

#include "formats/scale_search.h"
#include "lowbit/error.h"

namespace lowbit {

FormatQuantizer::FormatQuantizer(const Format& format, int64_t rows, int64_t cols, std::span<const float> w)
    : format_(format),
      steps_(format.fit_round ? *format.fit_round
                              : throw Error("GPTQ cannot round into this format (it has no fit/round steps)",
                                            {.value = std::string(format.name)})),
      rows_(rows), cols_(cols), block_(format.block_size == kPerRow ? 0 : format.block_size) {
  if (!format_fits(format, cols) || !format.row_local) {
    throw Error("rows of " + std::to_string(cols) + " do not fit " + std::string(format.name), {.value = std::to_string(cols)});
  }
  row_bytes_ = format_row_bytes(format, cols);
  block_bytes_ = block_ == 0 ? row_bytes_ : static_cast<uint64_t>(format.block_bytes);
  bytes_.assign(format.tensor_bytes(rows, cols), 0);
  const int64_t blocks = block_ == 0 ? 1 : cols / block_;
  aux_.assign(static_cast<size_t>(rows * blocks * steps_.aux_floats), 0.0f);
  row_mean_square_.resize(rows);
  // As the legacy quantizers take it over the row they quantize.
  for (int64_t r = 0; r < rows; ++r) row_mean_square_[r] = formats::mean_square(w.data() + r * cols, cols);
}

float* FormatQuantizer::aux_at(int64_t row, int64_t group) {
  const int64_t blocks = block_ == 0 ? 1 : cols_ / block_;
  return aux_.data() + (row * blocks + group) * steps_.aux_floats;
}

void FormatQuantizer::fit(int64_t group, std::span<const float* const> columns, const float* importance) {
  const int64_t n = static_cast<int64_t>(columns.size());
  const float* imp = format_.uses_importance ? importance : nullptr;
#pragma omp parallel if (rows_ * n >= (1 << 14))
  {
    std::vector<float> x(n);
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows_; ++r) {
      for (int64_t i = 0; i < n; ++i) x[i] = columns[i][r];
      steps_.fit(x.data(), n, imp, row_mean_square_[r], block_at(r, group), aux_at(r, group));
    }
  }
}

void FormatQuantizer::round(int64_t group, int64_t offset, const float* w, float* q) {
  const int64_t n = block_ == 0 ? cols_ : block_;
  for (int64_t r = 0; r < rows_; ++r) q[r] = steps_.round(block_at(r, group), aux_at(r, group), n, offset, w[r]);
}

std::vector<uint8_t> fit_round_tensor(const Format& format, std::span<const float> w, int64_t rows, int64_t cols,
                                      const float* importance) {
  FormatQuantizer fq(format, rows, cols, w);
  const int64_t block = fq.group_size() == 0 ? cols : fq.group_size();
  std::vector<std::vector<float>> columns(cols, std::vector<float>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) columns[c][r] = w[r * cols + c];
  }
  std::vector<float> q(rows);
  for (int64_t g = 0; g < cols / block; ++g) {
    std::vector<const float*> ptrs;
    for (int64_t i = 0; i < block; ++i) ptrs.push_back(columns[g * block + i].data());
    fq.fit(g, ptrs, importance ? importance + g * block : nullptr);
    for (int64_t i = 0; i < block; ++i) fq.round(g, i, columns[g * block + i].data(), q.data());
  }
  return fq.take_bytes();
}

}  // namespace lowbit
