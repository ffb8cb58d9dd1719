// Scale searches shared by the k-quant, legacy-with-importance and iq4 quantizers: given a
// group of values (and weights), find the scale (and min) minimising the weighted squared
// error of the rounded group; and the importance weighting they are given. They follow ggml-quants.c's make_*_quants so that lowbit's
// files have ggml's quality; see docs/FORMATS.md for where they deviate.
#pragma once

#include <cstdint>

namespace lowbit::formats {

// Mean of x^2 over n values (ggml's sigma^2; the group it is taken over varies by format).
float mean_square(const float* x, int64_t n);

// ggml's importance weighting: w[j] = importance[j] * sqrt(sigma2 + x[j]^2).
void importance_weights(const float* x, const float* importance, float sigma2, int n, float* w);

// How symmetric_scale_search weighs elements when no weights are given.
enum class ElementWeight { kSquare, kUnit, kAbs, kSqrtAbs };

// Symmetric levels l in [-nmax, nmax-1] with x ~ scale * l; tries 19 candidate inverse
// scales around -nmax/max and keeps the weighted least-squares best. Writes L[i] = l + nmax.
// weights: (n) or nullptr (then `fallback` weighs them). Returns the scale (0 if all zero).
// (ggml make_qx_quants with rmse_type 1..4)
// chosen_iscale (optional): the inverse scale the levels were rounded with.
float symmetric_scale_search(int n, int nmax, const float* x, int8_t* L, const float* weights,
                             ElementWeight fallback = ElementWeight::kSquare, float* chosen_iscale = nullptr);

// `count` independent symmetric_scale_search calls (kSquare fallback) on groups of n (group
// g: x + g*n, weights + g*n or nullptr, L + g*n, scale_out[g]); the same results, sixteen
// groups at a time in AVX-512 lanes when the kernel table's set is avx512 and n <= 32.
void symmetric_scale_search_many(int count, int n, int nmax, const float* x, const float* weights, int8_t* L,
                                 float* scale_out);
// The AVX-512 kernel behind it (lanes <= 16, n <= 32); only for CPUs with AVX-512.
void symmetric_scale_search_x16(int lanes, int n, int nmax, const float* x, const float* weights, int8_t* L,
                                float* scale_out);

// Symmetric search for 3-bit sub-blocks: start from -nmax/max and move single elements to a
// better level while the x^2-weighted fit improves (ggml make_q3_quants, do_rmse=true).
// Writes L[i] = l + nmax.
float symmetric_scale_refine(int n, int nmax, const float* x, int8_t* L);

// Affine levels l in [0, nmax] with x ~ scale * l - min, min >= 0 returned in *min_out.
// Grid search over nstep+1 inverse scales (nmax + rmin + rdelta*i)/(max - min), each
// followed by a weighted least-squares fit of scale and min. use_mad: weighted absolute
// error instead of squared. weights: (n), or nullptr for x^2.
// (ggml make_qkx2_quants / make_qkx3_quants)
float affine_scale_search(int n, int nmax, const float* x, const float* weights, uint8_t* L,
                          float* min_out, float rmin, float rdelta, int nstep, bool use_mad);

// `count` independent affine_scale_search calls on groups of n values (group g: x + g*n,
// weights + g*n or nullptr, L + g*n, scale_out[g], min_out[g]); the same results, sixteen
// groups at a time in AVX-512 lanes when the kernel table's set is avx512 and n <= 32.
void affine_scale_search_many(int count, int n, int nmax, const float* x, const float* weights, uint8_t* L,
                              float* scale_out, float* min_out, float rmin, float rdelta, int nstep, bool use_mad);
// The AVX-512 kernel behind it (lanes <= 16 groups, n <= 32); only for CPUs with AVX-512.
void affine_scale_search_x16(int lanes, int n, int nmax, const float* x, const float* weights, uint8_t* L,
                             float* scale_out, float* min_out, float rmin, float rdelta, int nstep, bool use_mad);

// Quantizes non-negative values (sub-block scales) to [0, nmax] with one scale, weighted
// by `weights`, trying 9 inverse scales and then moving single elements.
// (ggml make_qp_quants)
float positive_scale_search(int n, int nmax, const float* x, uint8_t* L, const float* weights);

// Index of the grid value nearest to v in a sorted 16-entry int8 grid.
int nearest_grid_index(const int8_t* grid, float v);

}  // namespace lowbit::formats
