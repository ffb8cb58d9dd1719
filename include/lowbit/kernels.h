// The kernel table, beside the format table: for each weight format, the activation format
// its dot products use and the functions that compute them, for every instruction set
// compiled in (ref = the scalar oracle and fallback, avx2, avx512 = AVX-512 VNNI). The best
// set the CPU can run is chosen once, at the first call. Not the matmul drivers
// (src/kernels/linear.cpp) and not the formats themselves (format.h).
//
// The int8 path (as llama.cpp's vec_dot_type): activations are quantized per row to int8
// with one fp32 scale per 16 elements (Q8Rows); a weight row is read as unsigned codes with
// one affine map per 16 elements, value = a * u + b (U8Row). Then
//   Σ_i w_i x_i = Σ_s (a_s d_s Σ_{i in s} u_i q_i + b_s sum_s),  sum_s = d_s Σ_{i in s} q_i,
// where the inner sums are exact integers. Formats whose values are not integers on a
// 16-element affine grid (f16, bf16, nf4, fp8, ...) use the float path: rows decoded to
// fp32 and dotted with fp32 activations.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "lowbit/format.h"

namespace lowbit {

inline constexpr int64_t kQ8Sub = 16;    // elements per activation/weight scale
inline constexpr int64_t kQ8Chunk = 64;  // rows are padded with zeros to a multiple of this
inline int64_t q8_padded(int64_t cols) { return (cols + kQ8Chunk - 1) / kQ8Chunk * kQ8Chunk; }

// One activation row quantized: q: (padded) int8; d_lane: (padded/4) the scale of each
// 4-code lane (a sub-block's scale repeated 4 times); sum: (padded/16) d * Σq per sub-block.
struct Q8RowView {
  const int8_t* q;
  const float* d_lane;
  const float* sum;
};

// T activation rows quantized together (zero padding included).
struct Q8Rows {
  int64_t rows = 0, cols = 0, padded = 0;
  std::vector<int8_t> q;
  std::vector<float> d_lane, sum;
  Q8RowView row(int64_t t) const {
    return {q.data() + t * padded, d_lane.data() + t * (padded / 4), sum.data() + t * (padded / kQ8Sub)};
  }
};

// One weight row unpacked: u: (padded) codes; a, b: (padded/16) affine map per sub-block.
struct U8RowView {
  const uint8_t* u;
  const float* a;
  const float* b;
};

// 16 weight rows unpacked and interleaved for the prefill kernel, so that one 64-byte load
// holds 4 codes of each row and the int8 sums of a sub-block accumulate per row in one lane:
// u: (padded/16 sub-blocks, 4 groups, 16 rows, 4 codes); a, b: (padded/16, 16 rows).
struct Panel16View {
  const uint8_t* u;
  const float* a;
  const float* b;
};
inline constexpr int64_t kPanelRows = 16;

// Interleaves rows[r] (r < n_rows <= 16, each unpacked: u (padded), a/b (padded/16)) into a
// panel; rows n_rows..15 get zero codes and maps.
void interleave_panel16(const U8RowView* rows, int n_rows, int64_t padded, uint8_t* u, float* a, float* b);

enum class ActFormat { kF32, kQ8 };

// Per instruction set: the format-independent kernels.
struct IsaKernels {
  std::string_view name;  // "ref", "avx2", "avx512"
  // x: (cols) → one Q8 row (q: padded, d_lane: padded/4, sum: padded/16).
  void (*quantize_q8)(const float* x, int64_t cols, int8_t* q, float* d_lane, float* sum);
  // y[n] = w · x_n for the nt <= 4 activation rows xs[0..nt); padded: multiple of 64.
  void (*dot_u8_q8)(U8RowView w, int64_t padded, const Q8RowView* xs, int nt, float* y);
  // Σ a_i b_i over n elements.
  float (*dot_f32)(const float* a, const float* b, int64_t n);
  // Prefill: 16 unpacked weight rows interleaved (Panel16) against nt <= 4 activation rows;
  // y: (nt, 16).
  void (*gemm_panel16)(const struct Panel16View& w, int64_t padded, const Q8RowView* xs, int nt, float* y);
  // The set's int8 multiply-accumulate instruction run back to back on all OpenMP threads,
  // in GOP/s (2 ops per MAC); null for ref.
  double (*int8_peak_gops)();
  // gate: (n) <- silu(gate) * up: (n), i.e. gate / (1 + exp(-gate)) * up.
  void (*swiglu)(float* gate, const float* up, int64_t n);
  // x: (n) <- exp(x - max x) / Σ exp(x - max x), n >= 1.
  void (*softmax)(float* x, int64_t n);
  // For nq queries x_q at x + q·xs, each n long: out[q·os + r] = x_q · row r, r < n_rows,
  // rows r at rows + r·stride, each n long (attention scores of the heads sharing a KV head).
  void (*dot_rows)(const float* x, int64_t xs, int nq, const float* rows, int64_t stride, int64_t n_rows, int64_t n,
                   float* out, int64_t os);
  // For nq weight vectors w_q at w + q·ws, each n_rows long: out[q·os + i] = Σ_r w_q[r] ·
  // row r [i], i < n, rows as above.
  void (*weighted_sum)(const float* w, int64_t ws, int nq, const float* rows, int64_t stride, int64_t n_rows, int64_t n,
                       float* out, int64_t os);
  // RoPE of one token: x: (n_heads, head_dim) rotated in place by cos/sin: (head_dim / 2) of
  // its position; pair i is (2i, 2i+1) when adjacent_pairs, else (i, i + head_dim / 2):
  // (a, b) <- (a c_i - b s_i, a s_i + b c_i), products rounded before the sum (no FMA).
  void (*rope)(float* x, int64_t n_heads, int64_t head_dim, bool adjacent_pairs, const float* cos, const float* sin);
  // W8A8: nt <= 4 activation rows xs (each a bnb_int8 row: f32 absmax, then cols int8
  // codes; row t at xs + t·(4 + cols)) against the first nr <= 4 rows of one weight panel
  // (w8a8_pack_panels): y[t·ldy + r] = float(Σ_i x_i w_i) · (absmax_x / 127) ·
  // (absmax_w / 127), the sum exact in int32 (cols <= 2^16). Every set gives the same
  // bits; null: the scalar one.
  void (*w8a8_tile)(const uint8_t* xs, int nt, const uint8_t* panel, int nr, int64_t cols, float* y, int64_t ldy) = nullptr;
};

// A weight row, still in its file's bytes, dotted with nt <= 4 Q8 activation rows.
using FusedDotFn = void (*)(const uint8_t* row, int64_t cols, const Q8RowView* xs, int nt, float* y);
// A float-path weight row, in its file's bytes, dotted with nt <= 4 fp32 activation rows
// x: (nt, cols).
using FusedF32Fn = void (*)(const uint8_t* row, int64_t cols, const float* x, int nt, float* y);
// One activation row x: (cols) into the order a fused float kernel reads it: out: (cols).
using ArrangeF32Fn = void (*)(const float* x, int64_t cols, float* out);
// A fused float kernel and, when it reads the activations in another order than theirs,
// the rearrangement to apply to each activation row first (once per product, not per row).
struct FusedF32Kernel {
  FusedF32Fn fn = nullptr;
  ArrangeF32Fn arrange = nullptr;
};
// The row's bytes → codes and per-sub-block maps (u: padded, a/b: padded/16, zero-padded).
using UnpackU8Fn = void (*)(const uint8_t* row, int64_t cols, uint8_t* u, float* a, float* b);

// A row-local format's encoder for weights without importance: x (rows, cols) → out, the
// format's bytes, byte for byte what Format::quantize writes.
using EncodeRowsFn = void (*)(const float* x, int64_t rows, int64_t cols, uint8_t* out);

// A layout a set's kernel wants, made from the file's bytes at load time (the file stays
// standard): rows in groups of 16, interleaved so that one vector holds the same codes of
// all 16 rows and the sums accumulate one row per lane. Rows past the end are zeros.
struct RepackKernels {
  std::string_view format;
  uint64_t (*bytes)(int64_t rows, int64_t cols);
  // data: the tensor's bytes (rows, cols) → out: bytes(rows, cols).
  void (*repack)(const uint8_t* data, int64_t rows, int64_t cols, uint8_t* out);
  // Group g (rows 16g..16g+15) against nt <= 4 Q8 activation rows; y: (nt, 16).
  void (*dot)(const uint8_t* packed, int64_t group, int64_t cols, const Q8RowView* xs, int nt, float* y);
  // Rows whose length is not a multiple of this stay unpacked (the per-row formats' layouts
  // need whole code units; block formats: 1).
  int64_t cols_multiple = 1;
};

// Per weight format.
struct WeightKernels {
  const Format* format;
  ActFormat act;
  UnpackU8Fn unpack_u8;   // scalar reference; set for kQ8
  FusedDotFn fused_dot;   // the chosen set's fused decode kernel; null: unpack then dot_u8_q8
  FusedF32Kernel fused_f32;  // kF32 formats: the chosen set's fused kernel; fn null: decode + dot_f32
  const RepackKernels* repack;  // the chosen set's interleaved layout and kernel, or null
  EncodeRowsFn encode;    // the chosen set's encoder, or null: Format::quantize
};

// The instruction sets compiled in whose features this CPU has, "ref" first.
std::vector<const IsaKernels*> usable_isas();
// The set the engine uses: the best usable one, or the one named by LOWBIT_ISA.
const IsaKernels& active_isa();
// The kernels of `f` under the active set (O(1): indexed by the format's table position).
const WeightKernels& weight_kernels(const Format& f);
// The fused decode kernels of format `name` in set `isa`, or null (for tests and benches).
FusedDotFn fused_dot_for(const IsaKernels& isa, std::string_view name);
FusedF32Kernel fused_f32_for(const IsaKernels& isa, std::string_view name);
const RepackKernels* repack_for(const IsaKernels& isa, std::string_view name);
EncodeRowsFn encoder_for(const IsaKernels& isa, std::string_view name);

// Σ a_i b_i, the scalar reference (eight partial sums combined pairwise); matmul_ref and
// the reference attention use it.
float dot_f32_ref(const float* a, const float* b, int64_t n);
// gate <- gate / (1 + exp(-gate)) * up with std::exp, element by element: the reference.
void swiglu_ref(float* gate, const float* up, int64_t n);
// The references of IsaKernels::softmax (std::exp, sums in order), ::dot_rows (dot_f32_ref
// per query and row) and ::weighted_sum (per query, rows added in order).
void softmax_ref(float* x, int64_t n);
void dot_rows_ref(const float* x, int64_t xs, int nq, const float* rows, int64_t stride, int64_t n_rows, int64_t n,
                  float* out, int64_t os);
void weighted_sum_ref(const float* w, int64_t ws, int nq, const float* rows, int64_t stride, int64_t n_rows, int64_t n,
                      float* out, int64_t os);
void rope_ref(float* x, int64_t n_heads, int64_t head_dim, bool adjacent_pairs, const float* cos, const float* sin);
// The W8A8 weight panel: 4 weight rows interleaved into one read stream: 4 f32 absmax,
// 4 int32 Σ codes, then per 64 columns the 4 rows' 64 int8 codes in turn (zeros past cols
// and past the last row). w8a8_pack_panels: n bnb_int8 rows (f32 absmax, cols codes) →
// ceil(n / 4) panels of w8a8_panel_bytes(cols).
constexpr int64_t w8a8_panel_bytes(int64_t cols) { return 32 + 256 * ((cols + 63) / 64); }
std::vector<uint8_t> w8a8_pack_panels(const uint8_t* rows, int64_t n, int64_t cols);
// The scalar reference of IsaKernels::w8a8_tile.
void w8a8_tile_ref(const uint8_t* xs, int nt, const uint8_t* panel, int nr, int64_t cols, float* y, int64_t ldy);
// The scalar set ("ref"), the first of usable_isas().
const IsaKernels& ref_kernels();

// Quantizes T rows x: (T, cols) with the active set (rows in parallel).
void quantize_q8_rows(const float* x, int64_t T, int64_t cols, Q8Rows& out);

}  // namespace lowbit
