// The format table: one row per storage format (GGUF block types and lowbit's own), with
// its geometry, bits per weight, reference quantizer, decoder and test tolerances.
// Not kernels (dot products come later) and not quantization methods (GPTQ etc. write
// into these formats).
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace lowbit {

enum class FormatKind {
  kFloat,         // f32, f16, bf16
  kLegacy,        // ggml q4_0 .. q8_0: blocks of 32, one scale (and min)
  kKQuant,        // ggml q2_k .. q6_k: super-blocks of 256 with quantized sub-scales
  kNonLinear,     // iq4_nl, iq4_xs: a fixed non-uniform 16-level grid
  kTernary,       // tq1_0, tq2_0: {-1, 0, 1} times a scale
  kNormalFloat,   // nf4, fp4 (bitsandbytes): absmax blocks, 16-value code book
  kAffineInt,     // intN group-wise affine (GPTQ/AWQ layout)
  kFp8,           // fp8 e4m3 / e5m2 with one fp32 scale per row
  kMicroscaling,  // mxfp4: OCP MX, e8m0 scale per 32
  kRowInt8,       // bnb_int8 (LLM.int8()): int8 per row with an fp32 absmax
};
std::string_view format_kind_name(FormatKind k);

inline constexpr int kNotGguf = -1;
inline constexpr int64_t kPerRow = 0;  // block_size of formats with one group per row

// Round-trip tolerances, relative RMSE = rms(x - deq(q(x))) / rms(x), measured on rows
// of 4096 elements; `outlier` bounds the relative error of a lone large element (and of a
// constant row, which is one value rounded once).
struct Tolerance {
  double gaussian;
  double heavy_tailed;
  double outlier;
};

// x: (rows, cols) fp32 row-major; importance: (cols) or nullptr; out: tensor_bytes(rows, cols).
using QuantizeFn = void (*)(const float* x, int64_t rows, int64_t cols, const float* importance,
                            uint8_t* out);
// Decodes rows [row_begin, row_end) of a (rows, cols) tensor into out: (row_end-row_begin, cols).
using DequantizeFn = void (*)(const uint8_t* data, int64_t rows, int64_t cols, int64_t row_begin,
                              int64_t row_end, float* out);
using TensorBytesFn = uint64_t (*)(int64_t rows, int64_t cols);

// The two steps the reference quantizer of a block format fuses, split for methods that
// round with error feedback (GPTQ): `fit` chooses one block's parameters (scales, mins,
// sub-scales) from its values and importance and writes the whole block as plain rounding
// would; `round` then re-rounds element i to a new value under those parameters, writes its
// code and returns the value it decodes to. Fitting each block and rounding every element
// to its own value gives exactly the bytes of `quantize`. A block is block_size elements
// (the whole row for kPerRow formats); `aux` holds per-block rounding constants that the
// bytes do not keep (e.g. the unrounded 1/d ggml rounds with).
struct FitRound {
  int aux_floats;
  // x: (n); importance: (n) or nullptr; row_mean_square: mean x² of the block's row (the
  // legacy formats weigh importance by it); block: block_bytes; aux: aux_floats.
  void (*fit)(const float* x, int64_t n, const float* importance, float row_mean_square, uint8_t* block, float* aux);
  float (*round)(uint8_t* block, const float* aux, int64_t n, int64_t i, float x);
};

struct Format {
  std::string_view name;       // lower-case, as on the command line: "q4_k", "int4_g128_asym"
  int gguf_type;               // ggml type id, never renumbered; kNotGguf if none
  FormatKind kind;
  int64_t block_size;          // elements per block along a row; kPerRow = whole row
  int64_t block_bytes;         // bytes per block (kPerRow: bytes of the per-row header)
  double bits_per_weight;      // of a 4096 x 4096 tensor
  bool uses_importance;        // quantize reads per-column importance weights
  float max_abs_input;         // largest |weight| stored without overflow (fp16 scales: 65504)
  bool row_local;              // row r's bytes are [r*row_bytes, (r+1)*row_bytes)
  Tolerance tolerance;
  std::string_view description;
  TensorBytesFn tensor_bytes;
  QuantizeFn quantize;  // reference quantizer (deterministic; the bytes that go in files)
  DequantizeFn dequantize;
  const FitRound* fit_round = nullptr;  // null: no split steps (GPTQ cannot target it)
  // A format whose bytes are not row-local but whose values a row-local format holds
  // exactly (nf4_dq: nf4 with each block's absmax decoded): that format's name, and the
  // conversion of a whole tensor into its bytes. The engine runs such weights as the twin.
  std::string_view row_local_twin{};
  void (*to_row_local_twin)(const uint8_t* data, int64_t rows, int64_t cols, uint8_t* out) = nullptr;
};

const std::vector<Format>& format_table();
const Format* find_format(std::string_view name);  // nullptr if unknown
const Format& format_by_name(std::string_view name);  // throws Error listing known names
const Format* find_format_by_gguf_type(int gguf_type);

// Whether a row of `cols` elements can be stored in f (cols a multiple of the block).
bool format_fits(const Format& f, int64_t cols);
// Bytes of one row for row-local formats.
uint64_t format_row_bytes(const Format& f, int64_t cols);

// Checked entry points: shapes must fit, inputs must be finite and within max_abs_input
// (an Error names the row, column and value otherwise), importance (if given) has cols
// finite non-negative values.
std::vector<uint8_t> quantize_tensor(const Format& f, std::span<const float> x, int64_t rows,
                                     int64_t cols, const float* importance = nullptr);
// quantize_tensor's value check on x (rows × cols): an Error naming the first non-finite or
// too large value, its row (counted from first_row) and column.
void check_quantize_input(const Format& f, const float* x, int64_t rows, int64_t cols, int64_t first_row = 0);
// quantize_tensor's checks and encoding into out (f.tensor_bytes(rows, cols) bytes), x being
// rows first_row.. of a larger tensor (errors count rows from first_row).
void quantize_into(const Format& f, const float* x, int64_t rows, int64_t cols, const float* importance, uint8_t* out,
                   int64_t first_row = 0);
std::vector<float> dequantize_tensor(const Format& f, std::span<const uint8_t> data, int64_t rows,
                                     int64_t cols);

}  // namespace lowbit
