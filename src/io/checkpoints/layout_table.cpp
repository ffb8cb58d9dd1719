// The checkpoint layout table, quantization_config reading, and the helpers the layout
// files share (see checkpoint_layout.h).
#include <cstring>
#include <filesystem>

#include "formats/part_packing.h"
#include "io/checkpoints/checkpoint_layout.h"
#include "lowbit/error.h"
#include "lowbit/float_convert.h"

namespace lowbit {

ImportedWeight read_gptq(const QuantConfig& q, const LinearTensors& t, int64_t rows, int64_t cols);
ImportedWeight read_awq(const QuantConfig& q, const LinearTensors& t, int64_t rows, int64_t cols);
ImportedWeight read_bnb(const QuantConfig& q, const LinearTensors& t, int64_t rows, int64_t cols);
ImportedWeight read_compressed_tensors(const QuantConfig& q, const LinearTensors& t, int64_t rows, int64_t cols);
ImportedWeight read_block_fp8(const QuantConfig& q, const LinearTensors& t, int64_t rows, int64_t cols);

const std::vector<CheckpointLayout>& checkpoint_layouts() {
  static const std::vector<CheckpointLayout> table = {
      {"gptq", {"gptq"}, {"qweight", "qzeros", "scales", "g_idx", "bias"}, &read_gptq},
      {"awq", {"awq"}, {"qweight", "qzeros", "scales", "bias"}, &read_awq},
      {"bnb",
       {"bitsandbytes"},
       {"weight", "weight.absmax", "weight.quant_map", "weight.nested_absmax", "weight.nested_quant_map",
        "weight.quant_state.bitsandbytes__nf4", "weight.quant_state.bitsandbytes__fp4", "SCB", "weight_format", "bias"},
       &read_bnb},
      {"compressed-tensors",
       {"compressed-tensors"},
       {"weight", "weight_packed", "weight_scale", "weight_zero_point", "weight_shape", "weight_g_idx", "input_scale", "bias"},
       &read_compressed_tensors},
      {"fp8", {"fp8"}, {"weight", "weight_scale_inv", "weight_scale", "input_scale", "bias"}, &read_block_fp8},
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

}  // namespace lowbit
