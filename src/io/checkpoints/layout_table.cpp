// The checkpoint layout table, quantization_config reading, and the helpers the layout
// files share (see checkpoint_layout.h).
#include <cstring>
#include <filesystem>

#include "formats/part_packing.h"
#include "io/checkpoints/checkpoint_layout.h"
#include "io/checkpoints/export_helpers.h"
#include "lowbit/error.h"
#include "lowbit/float_convert.h"

namespace lowbit {

ImportedWeight read_gptq(const QuantConfig& q, const LinearTensors& t, int64_t rows, int64_t cols);
ImportedWeight read_awq(const QuantConfig& q, const LinearTensors& t, int64_t rows, int64_t cols);
ImportedWeight read_bnb(const QuantConfig& q, const LinearTensors& t, int64_t rows, int64_t cols);
ImportedWeight read_compressed_tensors(const QuantConfig& q, const LinearTensors& t, int64_t rows, int64_t cols);
ImportedWeight read_block_fp8(const QuantConfig& q, const LinearTensors& t, int64_t rows, int64_t cols);
using Writer = std::vector<ExportTensor> (*)(const std::string&, const Format&, std::span<const uint8_t>, int64_t, int64_t);
using ConfigWriter = Json (*)(const std::string&, const Format&);
std::vector<ExportTensor> write_gptq(const std::string& v, const Format& f, std::span<const uint8_t> b, int64_t rows, int64_t cols);
Json gptq_config(const std::string& v, const Format& f);
std::vector<ExportTensor> write_awq(const std::string& v, const Format& f, std::span<const uint8_t> b, int64_t rows, int64_t cols);
Json awq_config(const std::string& v, const Format& f);
std::vector<ExportTensor> write_bnb(const std::string& v, const Format& f, std::span<const uint8_t> b, int64_t rows, int64_t cols);
Json bnb_config(const std::string& v, const Format& f);
std::vector<ExportTensor> write_compressed_tensors(const std::string& v, const Format& f, std::span<const uint8_t> b, int64_t rows, int64_t cols);
Json compressed_tensors_config(const std::string& v, const Format& f);

const std::vector<CheckpointLayout>& checkpoint_layouts() {
  static const std::vector<CheckpointLayout> table = {
      {"gptq", {"gptq"}, {"qweight", "qzeros", "scales", "g_idx", "bias"}, &read_gptq, {"gptq", "gptq_v2"}, &write_gptq, &gptq_config},
      {"awq", {"awq"}, {"qweight", "qzeros", "scales", "bias"}, &read_awq, {"awq"}, &write_awq, &awq_config},
      {"bnb",
       {"bitsandbytes"},
       {"weight", "weight.absmax", "weight.quant_map", "weight.nested_absmax", "weight.nested_quant_map",
        "weight.quant_state.bitsandbytes__nf4", "weight.quant_state.bitsandbytes__fp4", "SCB", "weight_format", "bias"},
       &read_bnb, {"bnb"}, &write_bnb, &bnb_config},
      {"compressed-tensors",
       {"compressed-tensors"},
       {"weight", "weight_packed", "weight_scale", "weight_zero_point", "weight_shape", "weight_g_idx", "input_scale", "bias"},
       &read_compressed_tensors, {"compressed-tensors", "compressed-tensors-naive"}, &write_compressed_tensors, &compressed_tensors_config},
      {"fp8", {"fp8"}, {"weight", "weight_scale_inv", "weight_scale", "input_scale", "bias"}, &read_block_fp8, {}, nullptr, nullptr},
  };
  return table;
}

const CheckpointLayout& checkpoint_layout_for(const QuantConfig& q) {
  for (const CheckpointLayout& l : checkpoint_layouts()) {
    for (const std::string& m : l.methods) {
      if (m == q.method) return l;
    }
  }
  throw Error("unknown quantization_config.quant_method (lowbit reads gptq, awq, bitsandbytes, compressed-tensors and fp8)",
              {.file = q.file, .value = q.method});
}

const CheckpointLayout& checkpoint_layout_for_export(const std::string& name) {
  std::string names;
  for (const CheckpointLayout& l : checkpoint_layouts()) {
    for (const std::string& n : l.export_names) {
      if (n == name) return l;
      names += (names.empty() ? "" : ", ") + n;
    }
  }
  throw Error("unknown --export layout (one of " + names + ")", {.value = name});
}

std::optional<IntFormatShape> int_format_shape(const Format& f) {
  const std::string_view n = f.name;
  if (!n.starts_with("int") || n.size() < 8) return std::nullopt;
  const size_t u1 = n.find('_'), u2 = n.rfind('_');
  if (u1 == std::string_view::npos || u2 == u1) return std::nullopt;
  IntFormatShape s{};
  s.bits = std::stoi(std::string(n.substr(3, u1 - 3)));
  const std::string_view g = n.substr(u1 + 1, u2 - u1 - 1);
  s.group = g == "pc" ? 0 : std::stoll(std::string(g.substr(1)));
  s.sym = n.substr(u2 + 1) == "sym";
  return s;
}

QuantConfig read_quant_config(const std::string& dir) {
  QuantConfig q;
  const std::string config = dir + "/config.json", legacy = dir + "/quantize_config.json";
  Json block;
  if (std::filesystem::exists(config)) {
    const Json root = read_json_file(config);
    if (root.is_object() && root.contains("quantization_config") && !root["quantization_config"].is_null()) {
      block = root["quantization_config"];
      q.file = config;
    }
  }
  if (block.is_null() && std::filesystem::exists(legacy)) {  // AutoGPTQ before transformers' integration
    block = read_json_file(legacy);
    q.file = legacy;
    if (block.is_object() && !block.contains("quant_method")) block["quant_method"] = "gptq";
  }
  if (block.is_null()) return q;
  const JsonObject j(block, q.file, "quantization_config");
  if (j.get_string("quant_method") == "lowbit") return QuantConfig{};  // lowbit's own folder: formats in the safetensors metadata
  q.raw = block;
  q.method = j.get_string("quant_method");
  q.bits = static_cast<int>(j.get_int("bits", 4, 1, 64));
  q.group_size = j.get_int("group_size", 128, -1, int64_t{1} << 31);
  q.sym = j.get_bool("sym", true);
  q.desc_act = j.get_bool("desc_act", false);
  q.zero_point = j.get_bool("zero_point", true);
  q.format = j.get_string(q.method == "awq" ? "version" : (q.method == "compressed-tensors" ? "format" : "checkpoint_format"),
                          q.method == "awq" ? "gemm" : (q.method == "gptq" ? "gptq" : ""));
  checkpoint_layout_for(q);  // an unknown method is refused here, naming the file
  return q;
}

const TensorView& LinearTensors::get(std::string_view suffix) const {
  const TensorView* t = find(suffix);
  if (t == nullptr) throw Error("missing tensor of a quantized linear", {.file = file_, .tensor = name(suffix)});
  return *t;
}

const TensorView& LinearTensors::get(std::string_view suffix, DType dtype, const std::vector<int64_t>& shape) const {
  const TensorView& t = get(suffix);
  if (t.dtype != dtype || t.shape != shape) {
    std::string want = std::string(dtype_name(dtype)) + " [", got = std::string(dtype_name(t.dtype)) + " [";
    for (size_t i = 0; i < shape.size(); ++i) want += (i ? ", " : "") + std::to_string(shape[i]);
    for (size_t i = 0; i < t.shape.size(); ++i) got += (i ? ", " : "") + std::to_string(t.shape[i]);
    throw Error("tensor has dtype/shape " + got + "], expected " + want + "]", {.file = file_, .tensor = name(suffix), .value = got + "]"});
  }
  return t;
}

int32_t load_i32(const TensorView& t, uint64_t i) {
  int32_t v;
  std::memcpy(&v, t.data.data() + 4 * i, 4);
  return v;
}

uint16_t load_u16(const TensorView& t, uint64_t i) {
  uint16_t v;
  std::memcpy(&v, t.data.data() + 2 * i, 2);
  return v;
}

float load_f32(const TensorView& t, uint64_t i) {
  float v;
  std::memcpy(&v, t.data.data() + 4 * i, 4);
  return v;
}

float load_float(const TensorView& t, uint64_t i, const std::string& file) {
  switch (t.dtype) {
    case DType::F32: return load_f32(t, i);
    case DType::F16: return fp16_to_fp32(load_u16(t, i));
    case DType::BF16: return bf16_to_fp32(load_u16(t, i));
    default: throw Error("expected an F32, F16 or BF16 tensor", {.file = file, .tensor = t.name, .value = std::string(dtype_name(t.dtype))});
  }
}

ImportedWeight f32_weight(int64_t rows, int64_t cols, const std::function<float(int64_t, int64_t)>& value) {
  ImportedWeight w;
  w.format = &format_by_name("f32");
  w.bytes.resize(static_cast<size_t>(rows * cols * 4));
  float* out = reinterpret_cast<float*>(w.bytes.data());
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) out[r * cols + c] = value(r, c);
  }
  return w;
}

ImportedWeight import_affine_grid(const AffineGrid& g, const std::string& file, const std::string& tensor) {
  const int32_t maxq = (1 << g.bits) - 1, sym_zero = 1 << (g.bits - 1);
  for (int64_t r = 0; r < g.rows; ++r) {
    for (int64_t k = 0; k < g.groups; ++k) {
      if (g.zero(r, k) < 0 || g.zero(r, k) > maxq + 1) {
        throw Error("zero point out of range for " + std::to_string(g.bits) + "-bit codes (row " + std::to_string(r) + ", group " + std::to_string(k) + ")",
                    {.file = file, .tensor = tensor, .value = std::to_string(g.zero(r, k))});
      }
    }
  }
  // Consecutive groups of one size?
  const int64_t size = g.groups > 0 && g.cols % g.groups == 0 ? g.cols / g.groups : 0;
  bool consecutive = size > 0;
  for (int64_t c = 0; consecutive && c < g.cols; ++c) consecutive = g.group_of_col[c] == c / size;
  bool sym = true, zeros_fit = true;
  for (int32_t z : g.zeros) {
    sym = sym && z == sym_zero;
    zeros_fit = zeros_fit && z <= 255;
  }
  std::string name;
  if (consecutive && (g.bits == 2 || g.bits == 3 || g.bits == 4 || g.bits == 8) && zeros_fit) {
    const std::string grouping = (size == 32 || size == 64 || size == 128) ? "g" + std::to_string(size) : (g.groups == 1 ? "pc" : "");
    if (!grouping.empty()) name = "int" + std::to_string(g.bits) + "_" + grouping + (sym ? "_sym" : "_asym");
  }
  if (name.empty() || !format_fits(format_by_name(name), g.cols)) {
    return f32_weight(g.rows, g.cols, [&](int64_t r, int64_t c) {
      const int64_t k = g.group_of_col[c];
      return fp16_to_fp32(g.scale(r, k)) * static_cast<float>(static_cast<int32_t>(g.codes[r * g.cols + c]) - g.zero(r, k));
    });
  }
  ImportedWeight w;
  w.format = &format_by_name(name);
  w.bytes.resize(w.format->tensor_bytes(g.rows, g.cols));
  const uint64_t row_bytes = format_row_bytes(*w.format, g.cols), group_bytes = row_bytes / g.groups;
  for (int64_t r = 0; r < g.rows; ++r) {
    for (int64_t k = 0; k < g.groups; ++k) {
      formats::pack_affine_group(g.bits, sym, g.scale(r, k), g.zero(r, k), g.codes.data() + r * g.cols + k * size, size,
                                 w.bytes.data() + r * row_bytes + k * group_bytes);
    }
  }
  return w;
}

IntParts int_parts(const char* layout, const Format& f, std::span<const uint8_t> bytes, int64_t rows, int64_t cols) {
  const auto shape = int_format_shape(f);
  if (!shape) {
    throw Error(std::string("--export ") + layout + " writes intN group formats (int4_g128_sym, ...), not this one", {.value = std::string(f.name)});
  }
  IntParts p;
  p.shape = *shape;
  p.rows = rows;
  p.cols = cols;
  p.group = shape->group == 0 ? cols : shape->group;
  p.groups = cols / p.group;
  if (bytes.empty()) return p;
  p.codes.resize(static_cast<size_t>(rows * cols));
  p.zeros.resize(static_cast<size_t>(rows * p.groups));
  p.scales.resize(p.zeros.size());
  const uint64_t row_bytes = format_row_bytes(f, cols), group_bytes = row_bytes / p.groups;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t k = 0; k < p.groups; ++k) {
      const auto parts = formats::unpack_affine_group(shape->bits, shape->sym, bytes.data() + r * row_bytes + k * group_bytes, p.group,
                                                      p.codes.data() + r * cols + k * p.group);
      p.zeros[r * p.groups + k] = parts.zero;
      p.scales[r * p.groups + k] = parts.scale_f16;
    }
  }
  return p;
}

std::vector<uint8_t> words_bytes(const std::vector<uint32_t>& words) {
  std::vector<uint8_t> out(words.size() * 4);
  std::memcpy(out.data(), words.data(), out.size());
  return out;
}

std::vector<uint8_t> halves_bytes(const std::vector<uint16_t>& halves) {
  std::vector<uint8_t> out(halves.size() * 2);
  std::memcpy(out.data(), halves.data(), out.size());
  return out;
}

std::vector<uint8_t> floats_bytes(const std::vector<float>& values) {
  std::vector<uint8_t> out(values.size() * 4);
  std::memcpy(out.data(), values.data(), out.size());
  return out;
}

}  // namespace lowbit
