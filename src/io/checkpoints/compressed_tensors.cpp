// llm-compressor's compressed-tensors checkpoints (quantization_config.format, or the
// format of the first config group):
//   pack-quantized  weight_packed I32 [out, ceil(in/(32/bits))]: element c of a row in word
//                   c/(32/bits), bits (c mod 32/bits)·bits, stored as q + 2^(bits-1) (q signed);
//                   weight_scale [out, groups]; asymmetric groups/channels add
//                   weight_zero_point I32 [ceil(out/(32/bits)), groups], packed the same way
//                   along out_features; weight_shape [2]. (compressed_tensors pack_to_int32)
//   naive-quantized weight I8 [out, in] (q itself), weight_scale, optional weight_zero_point;
//   int-quantized   the same tensors (W8A8 checkpoints: int8 weights, int8 activations).
//   float-quantized weight F8_E4M3 [out, in], weight_scale [1] or [out, 1].
// w = (q − zero_point) · scale. Integer weights enter lowbit's intN group formats when the
// scales are exact in fp16; FP8 enters fp8_e4m3 with its scale per row.
#include <cstring>

#include "io/checkpoints/checkpoint_layout.h"
#include "lowbit/error.h"
#include "lowbit/float_convert.h"

namespace lowbit {
namespace {

struct CtWeights {
  std::string format, type = "int", strategy = "group";
  int bits = 4;
  bool sym = true;
  int64_t group_size = 128;
};

CtWeights read_ct_config(const QuantConfig& q) {
  const JsonObject root(q.raw, q.file, "quantization_config");
  CtWeights w;
  w.format = root.get_string("format", "");
  const JsonObject groups = root.get_object("config_groups");
  if (groups.json().size() != 1) {
    throw Error("compressed-tensors with " + std::to_string(groups.json().size()) + " config_groups (lowbit reads one)", {.file = q.file});
  }
  const JsonObject g = groups.get_object(groups.json().begin().key());
  if (g.has("format")) w.format = g.get_string("format");
  const JsonObject a = g.get_object("weights");
  w.bits = static_cast<int>(a.get_int("num_bits", std::nullopt, 1, 8));
  w.type = a.get_string("type", "int");
  w.sym = a.get_bool("symmetric", true);
  w.strategy = a.get_string("strategy", "tensor");
  if (w.strategy == "group") w.group_size = a.get_int("group_size", std::nullopt, 1, int64_t{1} << 31);
  return w;
}

// The fp16 bits of every scale, or nothing when some scale is not exact in fp16.
std::optional<std::vector<uint16_t>> fp16_scales(const TensorView& s, const std::string& file) {
  std::vector<uint16_t> out(static_cast<size_t>(s.numel()));
  for (size_t i = 0; i < out.size(); ++i) {
    const float v = load_float(s, i, file);
    out[i] = fp32_to_fp16(v);
    if (fp16_to_fp32(out[i]) != v) return std::nullopt;
  }
  return out;
}

ImportedWeight read_int(const CtWeights& w, const LinearTensors& t, int64_t rows, int64_t cols) {
  const int64_t groups = w.strategy == "group" ? (cols + w.group_size - 1) / w.group_size : 1;
  if (w.strategy != "group" && w.strategy != "channel") {
    throw Error("compressed-tensors int strategy '" + w.strategy + "' (lowbit reads group and channel)", {.file = t.file(), .tensor = t.prefix()});
  }
  const int offset = 1 << (w.bits - 1), pack = 32 / w.bits;
  const TensorView& scale = t.get("weight_scale");
  if (scale.numel() != rows * groups) throw Error("weight_scale must hold out x groups values", {.file = t.file(), .tensor = t.name("weight_scale")});
  AffineGrid g;
  g.bits = w.bits;
  g.rows = rows;
  g.cols = cols;
  g.groups = groups;
  g.group_of_col.resize(static_cast<size_t>(cols));
  const int64_t group = w.strategy == "group" ? w.group_size : cols;
  for (int64_t c = 0; c < cols; ++c) g.group_of_col[c] = static_cast<int32_t>(c / group);
  g.codes.resize(static_cast<size_t>(rows * cols));
  if (w.format == "pack-quantized") {
    const int64_t words = (cols + pack - 1) / pack;
    const TensorView& packed = t.get("weight_packed", DType::I32, {rows, words});
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c = 0; c < cols; ++c) {
        const uint32_t word = static_cast<uint32_t>(load_i32(packed, static_cast<uint64_t>(r * words + c / pack)));
        g.codes[r * cols + c] = static_cast<uint8_t>((word >> (w.bits * (c % pack))) & ((1u << w.bits) - 1));
      }
    }
  } else {  // naive-quantized: int8 values
    const TensorView& q = t.get("weight", DType::I8, {rows, cols});
    for (int64_t i = 0; i < rows * cols; ++i) g.codes[i] = static_cast<uint8_t>(static_cast<int8_t>(q.data[i]) + offset);
  }
  g.zeros.assign(static_cast<size_t>(rows * groups), offset);
  if (const TensorView* zp = t.find("weight_zero_point"); zp != nullptr && !w.sym) {
    if (w.format == "pack-quantized") {
      const int64_t zrows = (rows + pack - 1) / pack;
      if (zp->dtype != DType::I32 || zp->shape != std::vector<int64_t>{zrows, groups}) {
        throw Error("weight_zero_point must be I32 [ceil(out/" + std::to_string(pack) + "), groups]", {.file = t.file(), .tensor = t.name("weight_zero_point")});
      }
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t k = 0; k < groups; ++k) {
          const uint32_t word = static_cast<uint32_t>(load_i32(*zp, static_cast<uint64_t>((r / pack) * groups + k)));
          g.zeros[r * groups + k] = static_cast<int32_t>((word >> (w.bits * (r % pack))) & ((1u << w.bits) - 1));
        }
      }
    } else {
      if (zp->numel() != rows * groups || (zp->dtype != DType::I8 && zp->dtype != DType::I32)) {
        throw Error("weight_zero_point must hold out x groups integers", {.file = t.file(), .tensor = t.name("weight_zero_point")});
      }
      for (int64_t i = 0; i < rows * groups; ++i) {
        const int32_t z = zp->dtype == DType::I8 ? static_cast<int8_t>(zp->data[i]) : load_i32(*zp, static_cast<uint64_t>(i));
        g.zeros[i] = z + offset;
      }
    }
  }
  if (const auto h = fp16_scales(scale, t.file())) {
    g.scales = *h;
    return import_affine_grid(g, t.file(), t.name(w.format == "pack-quantized" ? "weight_packed" : "weight"));
  }
  return f32_weight(rows, cols, [&](int64_t r, int64_t c) {
    const int64_t k = g.group_of_col[c];
    return load_float(scale, static_cast<uint64_t>(r * groups + k), t.file()) * static_cast<float>(static_cast<int32_t>(g.codes[r * cols + c]) - g.zeros[r * groups + k]);
  });
}

}  // namespace

// FP8 E4M3 with a per-tensor ([1]) or per-row ([out] or [out, 1]) scale, into fp8_e4m3.
ImportedWeight import_fp8_rows(const LinearTensors& t, const char* scale_name, int64_t rows, int64_t cols) {
  const TensorView& w = t.get("weight", DType::F8_E4M3, {rows, cols});
  const TensorView& s = t.get(scale_name);
  if (s.numel() != 1 && s.numel() != rows) {
    throw Error("FP8 scale must be per tensor or per output row", {.file = t.file(), .tensor = t.name(scale_name), .value = std::to_string(s.numel()) + " values"});
  }
  ImportedWeight out;
  out.format = &format_by_name("fp8_e4m3");
  out.bytes.resize(out.format->tensor_bytes(rows, cols));
  const uint64_t row_bytes = format_row_bytes(*out.format, cols);
  for (int64_t r = 0; r < rows; ++r) {
    const float scale = load_float(s, s.numel() == 1 ? 0 : static_cast<uint64_t>(r), t.file());
    uint8_t* row = out.bytes.data() + r * row_bytes;  // fp8.cpp: f32 scale, then the codes
    std::memcpy(row, &scale, 4);
    std::memcpy(row + 4, w.data.data() + r * cols, static_cast<size_t>(cols));
  }
  return out;
}

ImportedWeight read_compressed_tensors(const QuantConfig& q, const LinearTensors& t, int64_t rows, int64_t cols) {
  const CtWeights w = read_ct_config(q);
  if (w.format == "float-quantized" || (w.format == "naive-quantized" && w.type == "float")) {
    if (w.bits != 8) throw Error("compressed-tensors float weights other than FP8", {.file = q.file, .value = std::to_string(w.bits)});
    return import_fp8_rows(t, "weight_scale", rows, cols);
  }
  if (w.type != "int") throw Error("compressed-tensors weight type '" + w.type + "'", {.file = q.file});
  if (w.format == "pack-quantized" || w.format == "naive-quantized" || w.format == "int-quantized") return read_int(w, t, rows, cols);
  throw Error("unsupported compressed-tensors format (lowbit reads pack-quantized, naive-quantized, int-quantized and float-quantized)",
              {.file = q.file, .value = w.format});
}

}  // namespace lowbit

// ---- writing (compressed_tensors pack_to_int32 for intN groups; float-quantized FP8) ----

#include "io/checkpoints/export_helpers.h"

namespace lowbit {

// naive-quantized (export name compressed-tensors-naive): int8 codes stored as they are,
// `weight` I8 [out, in] = q, `weight_scale` [out, groups], `weight_zero_point` I8 [out, groups]
// for asymmetric groups (the signed zero point).
std::vector<ExportTensor> write_naive_int8(const Format& f, std::span<const uint8_t> bytes, int64_t rows, int64_t cols) {
  const IntParts p = int_parts("compressed-tensors-naive", f, bytes, rows, cols);
  if (p.shape.bits != 8) throw Error("--export compressed-tensors-naive writes int8 groups (int4 and below: compressed-tensors)", {.value = std::string(f.name)});
  std::vector<ExportTensor> out = {{"weight", DType::I8, {rows, cols}, {}}, {"weight_scale", DType::F16, {rows, p.groups}, {}}};
  if (!p.shape.sym) out.push_back({"weight_zero_point", DType::I8, {rows, p.groups}, {}});
  if (bytes.empty()) return out;
  out[0].bytes.resize(static_cast<size_t>(rows * cols));
  for (size_t i = 0; i < out[0].bytes.size(); ++i) out[0].bytes[i] = static_cast<uint8_t>(static_cast<int8_t>(p.codes[i] - 128));
  out[1].bytes = halves_bytes(p.scales);
  if (!p.shape.sym) {
    out[2].bytes.resize(p.zeros.size());
    for (size_t i = 0; i < p.zeros.size(); ++i) out[2].bytes[i] = static_cast<uint8_t>(static_cast<int8_t>(p.zeros[i] - 128));
  }
  return out;
}

std::vector<ExportTensor> write_compressed_tensors(const std::string& variant, const Format& f, std::span<const uint8_t> bytes, int64_t rows, int64_t cols) {
  if (variant == "compressed-tensors-naive") return write_naive_int8(f, bytes, rows, cols);
  if (f.name == std::string_view("fp8_e4m3")) {
    std::vector<ExportTensor> out = {{"weight", DType::F8_E4M3, {rows, cols}, {}}, {"weight_scale", DType::F32, {rows, 1}, {}}};
    if (bytes.empty()) return out;
    out[0].bytes.resize(static_cast<size_t>(rows * cols));
    out[1].bytes.resize(static_cast<size_t>(rows * 4));
    const uint64_t rb = format_row_bytes(f, cols);
    for (int64_t r = 0; r < rows; ++r) {  // fp8.cpp: f32 scale, then the codes
      std::memcpy(out[1].bytes.data() + 4 * r, bytes.data() + r * rb, 4);
      std::memcpy(out[0].bytes.data() + r * cols, bytes.data() + r * rb + 4, static_cast<size_t>(cols));
    }
    return out;
  }
  const IntParts p = int_parts("compressed-tensors", f, bytes, rows, cols);
  const int bits = p.shape.bits, pack = 32 / bits;
  const int64_t words = (cols + pack - 1) / pack, zrows = (rows + pack - 1) / pack;
  std::vector<ExportTensor> out = {{"weight_packed", DType::I32, {rows, words}, {}}, {"weight_scale", DType::F16, {rows, p.groups}, {}}};
  if (!p.shape.sym) out.push_back({"weight_zero_point", DType::I32, {zrows, p.groups}, {}});
  out.push_back({"weight_shape", DType::I64, {2}, {}});
  if (bytes.empty()) return out;
  // Stored codes are q + 2^(bits-1) for the signed q; lowbit's codes are that already, and
  // its zero is the stored zero point (the signed zero point plus the same offset).
  std::vector<uint32_t> packed(static_cast<size_t>(rows * words), 0);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) packed[r * words + c / pack] |= static_cast<uint32_t>(p.codes[r * cols + c]) << (bits * (c % pack));
  }
  out[0].bytes = words_bytes(packed);
  out[1].bytes = halves_bytes(p.scales);
  size_t next = 2;
  if (!p.shape.sym) {
    std::vector<uint32_t> zp(static_cast<size_t>(zrows * p.groups), 0);
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t k = 0; k < p.groups; ++k) {
        const int32_t z = p.zeros[r * p.groups + k];
        if (z < 0 || z >= (1 << bits)) throw Error("zero point does not fit " + std::to_string(bits) + " bits", {.value = std::to_string(z)});
        zp[(r / pack) * p.groups + k] |= static_cast<uint32_t>(z) << (bits * (r % pack));
      }
    }
    out[next++].bytes = words_bytes(zp);
  }
  const int64_t shape[2] = {rows, cols};
  out[next].bytes.resize(16);
  std::memcpy(out[next].bytes.data(), shape, 16);
  return out;
}

Json compressed_tensors_config(const std::string& variant, const Format& f) {
  Json weights;
  std::string format;
  if (variant == "compressed-tensors-naive") {
    const auto s = *int_format_shape(f);
    format = "naive-quantized";
    weights = {{"num_bits", 8}, {"type", "int"}, {"symmetric", s.sym}, {"strategy", s.group == 0 ? "channel" : "group"},
               {"group_size", s.group == 0 ? Json(nullptr) : Json(s.group)}, {"dynamic", false}};
  } else if (f.name == std::string_view("fp8_e4m3")) {
    format = "float-quantized";
    weights = {{"num_bits", 8}, {"type", "float"}, {"symmetric", true}, {"strategy", "channel"}, {"group_size", nullptr}, {"dynamic", false}};
  } else {
    const auto s = int_format_shape(f);
    if (!s) throw Error("--export compressed-tensors writes intN group formats and fp8_e4m3", {.value = std::string(f.name)});
    format = "pack-quantized";
    weights = {{"num_bits", s->bits}, {"type", "int"}, {"symmetric", s->sym}, {"strategy", s->group == 0 ? "channel" : "group"},
               {"group_size", s->group == 0 ? Json(nullptr) : Json(s->group)}, {"dynamic", false}};
  }
  return {{"quant_method", "compressed-tensors"},
          {"format", format},
          {"quantization_status", "compressed"},
          {"config_groups", {{"group_0", {{"targets", {"Linear"}}, {"weights", weights}, {"input_activations", nullptr}, {"output_activations", nullptr}}}}},
          {"ignore", {"lm_head"}}};
}

}  // namespace lowbit
