// GPTQ checkpoints as AutoGPTQ and GPTQModel save them (qlinear `pack`):
//   qweight I32 [in·bits/32, out]: each output column's codes along in_features, as one
//           little-endian bit stream over its words (3-bit codes straddle words);
//   qzeros  I32 [groups, out·bits/32]: each group's zero points along out_features, the same way;
//   scales  F16 [groups, out];  g_idx I32 [in]: the group of each input column (act-order
//           permutes it; absent in old checkpoints: column / group_size).
// w[o][i] = scales[g][o] · (q − zero), g = g_idx[i]. checkpoint_format "gptq" (v1) stores
// zero − 1; "gptq_v2" stores the zero itself.
#include "io/checkpoints/checkpoint_layout.h"
#include "lowbit/error.h"

namespace lowbit {

ImportedWeight read_gptq(const QuantConfig& q, const LinearTensors& t, int64_t rows, int64_t cols) {
  const int bits = q.bits;
  if (bits != 2 && bits != 3 && bits != 4 && bits != 8) {
    throw Error("GPTQ bits must be 2, 3, 4 or 8", {.file = q.file, .tensor = t.prefix(), .value = std::to_string(bits)});
  }
  if (q.format != "gptq" && q.format != "gptq_v2") {
    throw Error("unknown GPTQ checkpoint_format (gptq or gptq_v2)", {.file = q.file, .value = q.format});
  }
  const bool v1 = q.format == "gptq";
  const int64_t group = q.group_size <= 0 ? cols : q.group_size;
  const int64_t groups = (cols + group - 1) / group;
  if ((cols * bits) % 32 != 0 || (rows * bits) % 32 != 0) {
    throw Error("GPTQ packing needs in and out features whose bits fill 32-bit words", {.file = t.file(), .tensor = t.name("qweight"),
                                                                                       .value = std::to_string(rows) + " x " + std::to_string(cols)});
  }
  const TensorView& qweight = t.get("qweight", DType::I32, {cols * bits / 32, rows});
  const TensorView& qzeros = t.get("qzeros", DType::I32, {groups, rows * bits / 32});
  const TensorView& scales = t.get("scales", DType::F16, {groups, rows});
  AffineGrid g;
  g.bits = bits;
  g.rows = rows;
  g.cols = cols;
  g.groups = groups;
  g.group_of_col.resize(static_cast<size_t>(cols));
  if (const TensorView* gi = t.find("g_idx")) {
    if (gi->dtype != DType::I32 || gi->shape != std::vector<int64_t>{cols}) {
      throw Error("g_idx must be I32 [in_features = " + std::to_string(cols) + "]", {.file = t.file(), .tensor = t.name("g_idx"),
                                                                                     .value = std::to_string(gi->numel()) + " elements"});
    }
    for (int64_t c = 0; c < cols; ++c) {
      const int32_t k = load_i32(*gi, static_cast<uint64_t>(c));
      if (k < 0 || k >= groups) throw Error("g_idx entry outside [0, groups)", {.file = t.file(), .tensor = t.name("g_idx"), .value = std::to_string(k)});
      g.group_of_col[c] = k;
    }
  } else {
    for (int64_t c = 0; c < cols; ++c) g.group_of_col[c] = static_cast<int32_t>(c / group);
  }
  g.codes.resize(static_cast<size_t>(rows * cols));
  for (int64_t o = 0; o < rows; ++o) {
    auto word = [&](uint64_t w) { return load_i32(qweight, w * rows + o); };
    for (int64_t i = 0; i < cols; ++i) g.codes[o * cols + i] = static_cast<uint8_t>(stream_bits(word, static_cast<uint64_t>(i) * bits, bits));
  }
  g.zeros.resize(static_cast<size_t>(rows * groups));
  g.scales.resize(g.zeros.size());
  const int64_t zero_words = rows * bits / 32;
  for (int64_t k = 0; k < groups; ++k) {
    auto word = [&](uint64_t w) { return load_i32(qzeros, k * zero_words + w); };
    for (int64_t o = 0; o < rows; ++o) {
      const int32_t stored = static_cast<int32_t>(stream_bits(word, static_cast<uint64_t>(o) * bits, bits));
      g.zeros[o * groups + k] = v1 ? stored + 1 : stored;
      g.scales[o * groups + k] = load_u16(scales, k * rows + o);
    }
  }
  return import_affine_grid(g, t.file(), t.name("qweight"));
}

}  // namespace lowbit

// ---- writing (AutoGPTQ/GPTQModel's qlinear pack, for lowbit's intN group formats) ----

#include "io/checkpoints/export_helpers.h"

namespace lowbit {

std::vector<ExportTensor> write_gptq(const std::string& variant, const Format& f, std::span<const uint8_t> bytes, int64_t rows, int64_t cols) {
  const IntParts p = int_parts("gptq", f, bytes, rows, cols);
  const int bits = p.shape.bits;
  if ((cols * bits) % 32 != 0 || (rows * bits) % 32 != 0) {
    throw Error("GPTQ packing needs in and out features whose bits fill 32-bit words", {.value = std::to_string(rows) + " x " + std::to_string(cols)});
  }
  std::vector<ExportTensor> out = {{"qweight", DType::I32, {cols * bits / 32, rows}, {}},
                                   {"qzeros", DType::I32, {p.groups, rows * bits / 32}, {}},
                                   {"scales", DType::F16, {p.groups, rows}, {}},
                                   {"g_idx", DType::I32, {cols}, {}}};
  if (bytes.empty()) return out;
  const bool v1 = variant == "gptq";
  const uint32_t mask = (1u << bits) - 1;
  std::vector<uint32_t> qweight(static_cast<size_t>(cols * bits / 32 * rows), 0);
  for (int64_t o = 0; o < rows; ++o) {
    for (int64_t i = 0; i < cols; ++i) put_stream_bits(qweight, static_cast<uint64_t>(o), static_cast<uint64_t>(rows), static_cast<uint64_t>(i) * bits, bits, p.codes[o * cols + i]);
  }
  const int64_t zero_words = rows * bits / 32;
  std::vector<uint32_t> qzeros(static_cast<size_t>(p.groups * zero_words), 0);
  std::vector<uint16_t> scales(static_cast<size_t>(p.groups * rows));
  for (int64_t k = 0; k < p.groups; ++k) {
    for (int64_t o = 0; o < rows; ++o) {
      const int32_t z = p.zeros[o * p.groups + k];
      if (v1 && (z == 0 || static_cast<uint32_t>(z - 1) > mask)) {
        throw Error("GPTQ v1 stores zero - 1, so this zero point cannot be written (use --export gptq_v2)", {.value = std::to_string(z)});
      }
      if (!v1 && static_cast<uint32_t>(z) > mask) throw Error("zero point does not fit " + std::to_string(bits) + " bits", {.value = std::to_string(z)});
      put_stream_bits(qzeros, static_cast<uint64_t>(k * zero_words), 1, static_cast<uint64_t>(o) * bits, bits, static_cast<uint32_t>(v1 ? z - 1 : z) & mask);
      scales[k * rows + o] = p.scales[o * p.groups + k];
    }
  }
  std::vector<uint32_t> g_idx(static_cast<size_t>(cols));
  for (int64_t i = 0; i < cols; ++i) g_idx[i] = static_cast<uint32_t>(i / p.group);
  out[0].bytes = words_bytes(qweight);
  out[1].bytes = words_bytes(qzeros);
  out[2].bytes = halves_bytes(scales);
  out[3].bytes = words_bytes(g_idx);
  return out;
}

Json gptq_config(const std::string& variant, const Format& f) {
  const auto s = *int_format_shape(f);
  return {{"quant_method", "gptq"}, {"bits", s.bits}, {"group_size", s.group == 0 ? -1 : s.group}, {"desc_act", false}, {"sym", s.sym},
          {"static_groups", false}, {"true_sequential", true}, {"checkpoint_format", variant}, {"damp_percent", 0.01}};
}

}  // namespace lowbit
