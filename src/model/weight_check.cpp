// NaN/Inf scan over every weight (weight_check.h): rows decoded in parallel, the first bad
// value per tensor kept by (row, column) so the answer does not depend on thread count.
#include "lowbit/weight_check.h"

#include <cmath>
#include <limits>

#include "lowbit/error.h"
#include "lowbit/mapped_file.h"

namespace lowbit {
namespace {

// The first non-finite value of `w` (count 0 when there is none).
NonFiniteWeight scan(const Weight& w) {
  NonFiniteWeight found{w.name, std::numeric_limits<int64_t>::max(), 0, 0, 0};
  int64_t count = 0;
#pragma omp parallel reduction(+ : count)
  {
    std::vector<float> row(static_cast<size_t>(w.cols));
    NonFiniteWeight local{w.name, std::numeric_limits<int64_t>::max(), 0, 0, 0};
#pragma omp for schedule(static)
    for (int64_t r = 0; r < w.rows; ++r) {
      w.row_to_f32(r, row.data());
      int bad = 0;  // a branch-free pass first; the slow one only for a row that has one
      for (int64_t c = 0; c < w.cols; ++c) bad |= !(std::fabs(row[c]) <= std::numeric_limits<float>::max());
      if (bad == 0) continue;
      for (int64_t c = 0; c < w.cols; ++c) {
        if (std::isfinite(row[c])) continue;
        ++count;
        if (r < local.row) local = {w.name, r, c, row[c], 0};
      }
    }
#pragma omp critical
    if (local.row < found.row || (local.row == found.row && local.col < found.col)) found = local;
  }
  found.count = count;
  return found;
}

std::string describe(float v) { return std::isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf"); }

}  // namespace

std::vector<NonFiniteWeight> find_nonfinite_weights(const Model& model) {
  std::vector<NonFiniteWeight> out;
  for (const Weight* w : model.weights()) {
    NonFiniteWeight f = scan(*w);
    if (f.count > 0) out.push_back(std::move(f));
  }
  return out;
}

void require_finite_weights(const Model& model) {
  for (const Weight* w : model.weights()) {
    const NonFiniteWeight f = scan(*w);
    // The scan reads the whole model; a mapped source keeps only what is in use resident
    // (the pages come back from the page cache when the tensor is read again).
    if (!w->owned) release_pages(w->data);
    if (f.count == 0) continue;
    throw Error("non-finite weight at row " + std::to_string(f.row) + ", column " + std::to_string(f.col) + " (" +
                    std::to_string(f.count) + " in this tensor)",
                {.file = model.source, .tensor = f.tensor, .value = describe(f.value)});
  }
}

}  // namespace lowbit
