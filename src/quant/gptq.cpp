// GPTQ for one linear layer, following the reference fasterquant (IST-DASLab/gptq,
// gptq.py) step by step; the step numbers are those of ../shared/docs/ALGORITHMS.md.
// The weight is held transposed, Wt: (cols, rows), so a column is a contiguous vector and
// the lazy batch update (step 7) is one GEMM.
#include "lowbit/gptq.h"


#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "lowbit/blas_setup.h"
#include "lowbit/error.h"
#include "core/sgemm_tiles.h"

// LAPACK (column-major Fortran interface, exported by OpenBLAS).
extern "C" void dpotrf_(const char* uplo, const int* n, double* a, const int* lda, int* info);
extern "C" void dtrtri_(const char* uplo, const char* diag, const int* n, double* a, const int* lda, int* info);

namespace lowbit {
namespace {

// Row-major calls on column-major LAPACK: a row-major lower triangle is a column-major
// upper one, so the triangle letters swap.
int cholesky_lower_row_major(double* a, int64_t n) {
  const int ni = static_cast<int>(n);
  int info = 0;
  dpotrf_("U", &ni, a, &ni, &info);
  return info;
}

int invert_upper_row_major(double* a, int64_t n) {
  const int ni = static_cast<int>(n);
  int info = 0;
  dtrtri_("L", "N", &ni, a, &ni, &info);
  return info;
}

// The upper Cholesky factor U of H⁻¹ (H⁻¹ = UᵀU), as the reference gets it from
// cholesky → cholesky_inverse → cholesky(upper). Computed in place with half the work: with
// J the reversal, JHJ = L Lᵀ gives H = Ũ Ũᵀ for the upper-triangular Ũ = J L J, so
// H⁻¹ = Ũ⁻ᵀ Ũ⁻¹ and U = Ũ⁻¹ (the factor is unique). JHJ is the matrix turned by 180°, a
// reversal of its elements. a: (n, n) symmetric H in, U out. Returns false when H is not
// positive definite.
bool upper_cholesky_of_inverse(std::vector<double>& a, int64_t n) {
  std::reverse(a.begin(), a.end());  // JHJ
  if (cholesky_lower_row_major(a.data(), n) != 0) return false;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = i + 1; j < n; ++j) a[i * n + j] = 0.0;  // L alone
  }
  std::reverse(a.begin(), a.end());  // Ũ = JLJ, upper triangular
  if (invert_upper_row_major(a.data(), n) != 0) return false;
  for (int64_t i = 0; i < n; ++i) {
    if (!(a[i * n + i] > 0) || !std::isfinite(a[i * n + i])) return false;
  }
  return true;
}

}  // namespace

GptqResult gptq_quantize(std::span<const float> w, int64_t rows, int64_t cols, std::span<const double> H,
                         GptqQuantizer& quantizer, const GptqOptions& o) {
  if (static_cast<int64_t>(w.size()) != rows * cols || static_cast<int64_t>(H.size()) != cols * cols) {
    throw Error("GPTQ: W must be (rows, cols) and H (cols, cols)",
                {.value = std::to_string(w.size()) + " / " + std::to_string(H.size())});
  }
  const int64_t G = quantizer.group_size();
  if (G < 0 || (G > 0 && cols % G != 0)) throw Error("GPTQ: columns must be a multiple of the group size", {.value = std::to_string(cols)});
  ensure_blas_kernels();
  GptqResult result;
  std::vector<float> Wt(static_cast<size_t>(cols * rows));  // Wt[c*rows + r] = W[r][c]
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) Wt[c * rows + r] = w[r * cols + c];
  }
  auto column = [&](int64_t c) { return Wt.data() + c * rows; };
  auto fit_columns = [&](int64_t group, int64_t first, int64_t n, const std::vector<float>& diag) {
    std::vector<const float*> cs(n);
    for (int64_t i = 0; i < n; ++i) cs[i] = column(first + i);
    quantizer.fit(group, cs, diag.data() + first);
  };
  std::vector<float> diag(cols);
  for (int64_t c = 0; c < cols; ++c) diag[c] = static_cast<float>(H[c * cols + c]);

  // 1. One group per row: parameters from the whole matrix, before dead columns are zeroed.
  if (G == 0) fit_columns(0, 0, cols, diag);
  // 2. Dead inputs (never active in calibration): H[d,d] = 1 (applied when H is copied in
  //    step 5; diag holds it), W[:,d] = 0.
  for (int64_t c = 0; c < cols; ++c) {
    if (H[c * cols + c] == 0) {
      diag[c] = 1;
      std::fill_n(column(c), rows, 0.0f);
      ++result.dead_columns;
    }
  }
  // 3. Static groups: every group fitted now, on the original (unpermuted) columns. Block
  //    formats store groups in the original order, so act-order implies static groups there.
  const bool static_groups = G > 0 && (o.static_groups || (o.act_order && quantizer.groups_are_storage_blocks()));
  if (static_groups) {
    for (int64_t g = 0; g < cols / G; ++g) fit_columns(g, g * G, G, diag);
  }
  // 4. Act-order: columns by descending diag(H) (dead ones count as 1); W permuted here,
  //    both sides of H when it is copied in step 5.
  std::vector<int64_t> perm(cols);
  std::iota(perm.begin(), perm.end(), 0);
  if (o.act_order) {
    auto h = [&](int64_t c) { return H[c * cols + c] == 0 ? 1.0 : H[c * cols + c]; };
    std::stable_sort(perm.begin(), perm.end(), [&](int64_t a, int64_t b) { return h(a) > h(b); });
    std::vector<float> permuted(Wt.size());
    for (int64_t i = 0; i < cols; ++i) std::copy_n(Wt.data() + perm[i] * rows, rows, permuted.data() + i * rows);
    Wt.swap(permuted);
    std::vector<float> d(cols);
    for (int64_t i = 0; i < cols; ++i) d[i] = diag[perm[i]];
    diag.swap(d);
  }
  // 5. Damping and Hinv = upper Cholesky factor of H⁻¹; more damping while H is singular.
  //    U = P·H·Pᵀ with the dead diagonal set to 1, plus damping; the caller's H is not
  //    changed, so each retry starts from it and only one working n² copy exists.
  double mean_diag = 0;
  for (int64_t c = 0; c < cols; ++c) mean_diag += H[c * cols + c] == 0 ? 1.0 : H[c * cols + c];
  mean_diag /= static_cast<double>(cols);
  std::vector<double> U;
  for (double percdamp = o.percdamp;; percdamp += o.damp_increment) {
    if (percdamp > o.max_percdamp + 1e-12) {
      throw Error("GPTQ: the Hessian stays singular with damping up to " + std::to_string(o.max_percdamp) + " of its mean diagonal",
                  {.value = "mean diag(H) " + std::to_string(mean_diag)});
    }
    U.resize(H.size());
#pragma omp parallel for schedule(static) if (cols >= 256)
    for (int64_t i = 0; i < cols; ++i) {
      const double* src = H.data() + perm[i] * cols;
      double* dst = U.data() + i * cols;
      for (int64_t j = 0; j < cols; ++j) dst[j] = src[perm[j]];
      if (dst[i] == 0) dst[i] = 1;
      dst[i] += percdamp * mean_diag;
    }
    bool factored;
    {
      const SingleThreadedBlas one_thread;  // LAPACK's blocking follows the thread count, its bits too
      factored = upper_cholesky_of_inverse(U, cols);
    }
    if (factored) {
      result.percdamp = percdamp;
      break;
    }
    if (o.damp_increment <= 0) throw Error("GPTQ: the Hessian is not positive definite", {.value = "percdamp " + std::to_string(percdamp)});
  }
  std::vector<float> Hinv(U.begin(), U.end());
  U.clear();
  U.shrink_to_fit();

  // 6.-7. Column by column in blocks of block_size, with lazy batch updates.
  std::vector<float> Q(static_cast<size_t>(cols * rows));
  const int64_t B = std::max<int64_t>(1, o.block_size);
  std::vector<float> W1, Err1;
  for (int64_t i1 = 0; i1 < cols; i1 += B) {
    const int64_t i2 = std::min(i1 + B, cols), count = i2 - i1;
    W1.assign(Wt.begin() + i1 * rows, Wt.begin() + i2 * rows);
    Err1.assign(static_cast<size_t>(count * rows), 0.0f);
    for (int64_t i = 0; i < count; ++i) {
      const int64_t p = i1 + i;  // position in the (permuted) column order
      int64_t group = 0, offset = perm[p];
      if (static_groups) {
        group = perm[p] / G;
        offset = perm[p] % G;
      } else if (G > 0) {
        group = p / G;
        offset = p % G;
        // Dynamic groups: fitted when reached, from W as updated by the finished blocks.
        if (offset == 0) fit_columns(group, p, std::min(G, cols - p), diag);
      }
      float* wcol = W1.data() + i * rows;
      float* qcol = Q.data() + p * rows;
      quantizer.round(group, offset, wcol, qcol);
      const float d = Hinv[p * cols + p];
      float* err = Err1.data() + i * rows;
      for (int64_t r = 0; r < rows; ++r) err[r] = (wcol[r] - qcol[r]) / d;
      // W1[:, i:] -= err ⊗ Hinv[p, p:block end]
#pragma omp parallel for schedule(static) if (rows * (count - i) >= (1 << 16))
      for (int64_t j = i + 1; j < count; ++j) {
        const float h = Hinv[p * cols + i1 + j];
        float* wj = W1.data() + j * rows;
        for (int64_t r = 0; r < rows; ++r) wj[r] -= err[r] * h;
      }
    }
    // W[:, i2:] -= Err1 · Hinv[i1:i2, i2:], transposed: Wt[i2:] -= Hinv[i1:i2, i2:]ᵀ · Err1.
    if (i2 < cols) {
      sgemm_tiles(true, false, cols - i2, rows, count, -1.0f, Hinv.data() + i1 * cols + i2, cols, Err1.data(), rows, 1.0f, Wt.data() + i2 * rows, rows);
    }
  }
  // 8. Back to the original column order, row-major.
  result.q.resize(static_cast<size_t>(rows * cols));
  for (int64_t p = 0; p < cols; ++p) {
    const float* qc = Q.data() + p * rows;
    for (int64_t r = 0; r < rows; ++r) result.q[r * cols + perm[p]] = qc[r];
  }
  return result;
}

GptqMinMaxQuantizer::GptqMinMaxQuantizer(int bits, int64_t group_size, bool symmetric, int64_t rows)
    : maxq_((1 << bits) - 1), group_(group_size), sym_(symmetric), rows_(rows) {
  if (bits < 1 || bits > 8) throw Error("GPTQ quantizer: bits must be 1..8", {.value = std::to_string(bits)});
}

void GptqMinMaxQuantizer::fit(int64_t group, std::span<const float* const> columns, const float*) {
  if (static_cast<int64_t>(scale_.size()) <= group) {
    scale_.resize(group + 1);
    zero_.resize(group + 1);
  }
  std::vector<float>& scale = scale_[group];
  std::vector<float>& zero = zero_[group];
  scale.resize(rows_);
  zero.resize(rows_);
  for (int64_t r = 0; r < rows_; ++r) {
    float xmin = 0, xmax = 0;
    for (const float* c : columns) {
      xmin = std::min(xmin, c[r]);
      xmax = std::max(xmax, c[r]);
    }
    if (sym_) {
      xmax = std::max(std::fabs(xmin), xmax);
      if (xmin < 0) xmin = -xmax;
    }
    if (xmin == 0 && xmax == 0) {
      xmin = -1;
      xmax = 1;
    }
    scale[r] = (xmax - xmin) / static_cast<float>(maxq_);
    zero[r] = sym_ ? static_cast<float>(maxq_ + 1) / 2 : std::nearbyint(-xmin / scale[r]);
  }
}

void GptqMinMaxQuantizer::round(int64_t group, int64_t, const float* w, float* q) {
  const std::vector<float>& scale = scale_.at(group);
  const std::vector<float>& zero = zero_.at(group);
  for (int64_t r = 0; r < rows_; ++r) {
    const float level = std::clamp(std::nearbyint(w[r] / scale[r]) + zero[r], 0.0f, static_cast<float>(maxq_));
    q[r] = scale[r] * (level - zero[r]);
  }
}

std::vector<float> GptqMinMaxQuantizer::rtn(std::span<const float> w, int64_t cols) {
  const int64_t rows = rows_;
  const int64_t G = group_ == 0 ? cols : group_;
  std::vector<float> out(w.size()), col(rows), q(rows);
  std::vector<std::vector<float>> group_cols(G, std::vector<float>(rows));
  for (int64_t g0 = 0; g0 < cols; g0 += G) {
    std::vector<const float*> ptrs;
    for (int64_t c = 0; c < G; ++c) {
      for (int64_t r = 0; r < rows; ++r) group_cols[c][r] = w[r * cols + g0 + c];
      ptrs.push_back(group_cols[c].data());
    }
    fit(g0 / G, ptrs, nullptr);
    for (int64_t c = 0; c < G; ++c) {
      round(g0 / G, c, group_cols[c].data(), q.data());
      for (int64_t r = 0; r < rows; ++r) out[r * cols + g0 + c] = q[r];
    }
  }
  return out;
}

}  // namespace lowbit
