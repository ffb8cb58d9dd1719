// AutoAWQ's GEMM layout (version "gemm", 4-bit):
//   qweight I32 [in, out/8]: input row i, word j holds output columns 8j..8j+7, column 8j+k
//           in nibble kAwqOrder[k] (bits 4n..4n+3);
//   qzeros  I32 [groups, out/8]: the zero points, packed the same way (stored as they are);
//   scales  F16 [groups, out].
// w[o][i] = scales[g][o] · (q − zero), g = i / group_size. (AutoAWQ packs with the order
// [0, 2, 4, 6, 1, 3, 5, 7]; unpacking reads it back through its inverse, used here.)
#include "io/checkpoints/checkpoint_layout.h"
#include "lowbit/error.h"

namespace lowbit {
namespace {

constexpr int kAwqOrder[8] = {0, 4, 1, 5, 2, 6, 3, 7};  // output column 8j+k sits in nibble kAwqOrder[k]

uint8_t awq_nibble(const TensorView& t, int64_t row, int64_t words_per_row, int64_t col) {
  const uint32_t word = static_cast<uint32_t>(load_i32(t, static_cast<uint64_t>(row * words_per_row + col / 8)));
  return static_cast<uint8_t>((word >> (4 * kAwqOrder[col % 8])) & 0xF);
}

}  // namespace

ImportedWeight read_awq(const QuantConfig& q, const LinearTensors& t, int64_t rows, int64_t cols) {
  if (q.bits != 4) throw Error("AWQ checkpoints are 4-bit", {.file = q.file, .value = std::to_string(q.bits)});
  if (q.format != "gemm") throw Error("unsupported AWQ version (lowbit reads the GEMM layout)", {.file = q.file, .value = q.format});
  if (rows % 8 != 0) throw Error("AWQ packs 8 output features per word", {.file = t.file(), .tensor = t.name("qweight"), .value = std::to_string(rows)});
  const int64_t group = q.group_size <= 0 ? cols : q.group_size;
  const int64_t groups = (cols + group - 1) / group, words = rows / 8;
  const TensorView& qweight = t.get("qweight", DType::I32, {cols, words});
  const TensorView& qzeros = t.get("qzeros", DType::I32, {groups, words});
  const TensorView& scales = t.get("scales", DType::F16, {groups, rows});
  AffineGrid g;
  g.bits = 4;
  g.rows = rows;
  g.cols = cols;
  g.groups = groups;
  g.group_of_col.resize(static_cast<size_t>(cols));
  for (int64_t c = 0; c < cols; ++c) g.group_of_col[c] = static_cast<int32_t>(c / group);
  g.codes.resize(static_cast<size_t>(rows * cols));
  for (int64_t i = 0; i < cols; ++i) {
    for (int64_t o = 0; o < rows; ++o) g.codes[o * cols + i] = awq_nibble(qweight, i, words, o);
  }
  g.zeros.resize(static_cast<size_t>(rows * groups));
  g.scales.resize(g.zeros.size());
  for (int64_t k = 0; k < groups; ++k) {
    for (int64_t o = 0; o < rows; ++o) {
      g.zeros[o * groups + k] = q.zero_point ? awq_nibble(qzeros, k, words, o) : 8;
      g.scales[o * groups + k] = load_u16(scales, k * rows + o);
    }
  }
  return import_affine_grid(g, t.file(), t.name("qweight"));
}

}  // namespace lowbit

// ---- writing (AutoAWQ's GEMM pack order, for lowbit's int4 group formats) ----

#include "io/checkpoints/export_helpers.h"

namespace lowbit {

std::vector<ExportTensor> write_awq(const std::string&, const Format& f, std::span<const uint8_t> bytes, int64_t rows, int64_t cols) {
  const IntParts p = int_parts("awq", f, bytes, rows, cols);
  if (p.shape.bits != 4 || p.shape.group == 0) throw Error("--export awq writes int4 with groups of 32, 64 or 128", {.value = std::string(f.name)});
  if (rows % 8 != 0) throw Error("AWQ packs 8 output features per word", {.value = std::to_string(rows)});
  const int64_t words = rows / 8;
  std::vector<ExportTensor> out = {{"qweight", DType::I32, {cols, words}, {}}, {"qzeros", DType::I32, {p.groups, words}, {}},
                                   {"scales", DType::F16, {p.groups, rows}, {}}};
  if (bytes.empty()) return out;
  std::vector<uint32_t> qweight(static_cast<size_t>(cols * words), 0), qzeros(static_cast<size_t>(p.groups * words), 0);
  std::vector<uint16_t> scales(static_cast<size_t>(p.groups * rows));
  for (int64_t o = 0; o < rows; ++o) {
    const int nibble = kAwqOrder[o % 8];
    for (int64_t i = 0; i < cols; ++i) qweight[i * words + o / 8] |= static_cast<uint32_t>(p.codes[o * cols + i]) << (4 * nibble);
    for (int64_t k = 0; k < p.groups; ++k) {
      qzeros[k * words + o / 8] |= static_cast<uint32_t>(p.zeros[o * p.groups + k]) << (4 * nibble);
      scales[k * rows + o] = p.scales[o * p.groups + k];
    }
  }
  out[0].bytes = words_bytes(qweight);
  out[1].bytes = words_bytes(qzeros);
  out[2].bytes = halves_bytes(scales);
  return out;
}

Json awq_config(const std::string&, const Format& f) {
  const auto s = *int_format_shape(f);
  return {{"quant_method", "awq"}, {"bits", 4}, {"group_size", s.group}, {"zero_point", true}, {"version", "gemm"}};
}

}  // namespace lowbit
