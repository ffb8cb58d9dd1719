// bitsandbytes checkpoints as transformers saves them.
// 4-bit (Params4bit): `weight` U8 holds the flattened [out, in] codes, two per byte with the
// even element in the high nibble; `weight.absmax` F32 [blocks] (or, with double
// quantization, U8 codes of `weight.nested_quant_map` F32 [256] times
// `weight.nested_absmax` F32 [per 256 blocks], plus nested_offset); `weight.quant_map`
// F32 [16]; `weight.quant_state.bitsandbytes__nf4|fp4` U8: a JSON dict (quant_type,
// blocksize, dtype, shape, nested_blocksize, nested_offset).
//   w[i] = quant_map[code(i)] · absmax[i / blocksize]
// 8-bit (LLM.int8): `weight` I8 [out, in] and `SCB` F32 [out]: w = (weight · SCB) · (1/127),
// lowbit's bnb_int8 format exactly.
// bitsandbytes' kernels decode NF4 and FP4 with their built-in code books (FP4's sign bit
// gives -0 for code 8, where the stored quant_map says +0), so those are what lowbit
// applies; a quant_map that differs from them in value is refused. 4-bit weights enter
// nf4/fp4 (nf4_dq/fp4_dq) when the block sizes and the dynamic map are bnb's defaults,
// which lowbit's formats are; else exact f32.
#include <cmath>
#include <cstring>

#include "formats/nf4_fp4_codes.h"
#include "formats/part_packing.h"
#include "io/checkpoints/checkpoint_layout.h"
#include "lowbit/error.h"

namespace lowbit {
namespace {

bool same_floats(const TensorView& t, const float* want, size_t n) {
  if (t.dtype != DType::F32 || static_cast<size_t>(t.numel()) != n) return false;
  return std::memcmp(t.data.data(), want, 4 * n) == 0;
}

bool equal_values(const TensorView& t, const float* want, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (load_f32(t, i) != want[i]) return false;
  }
  return true;
}

Bnb4State read_quant_state(const QuantConfig& q, const LinearTensors& t) {
  Bnb4State s;
  const TensorView* packed = nullptr;
  for (const char* type : {"nf4", "fp4"}) {
    if (const TensorView* p = t.find(std::string("weight.quant_state.bitsandbytes__") + type)) {
      packed = p;
      s.quant_type = type;
    }
  }
  if (packed == nullptr) {  // older exports: the config says it
    const JsonObject cfg(q.raw, q.file, "quantization_config");
    s.quant_type = cfg.get_string("bnb_4bit_quant_type", "fp4");
    return s;
  }
  const std::string name = t.name("weight.quant_state.bitsandbytes__" + s.quant_type);
  const Json j = parse_json(std::string_view(reinterpret_cast<const char*>(packed->data.data()), packed->data.size()), t.file() + " (" + name + ")");
  const JsonObject o(j, t.file(), name);
  s.quant_type = o.get_string("quant_type", s.quant_type);
  s.blocksize = o.get_int("blocksize", 64, 1, int64_t{1} << 30);
  s.nested_blocksize = o.get_int("nested_blocksize", 256, 1, int64_t{1} << 30);
  if (o.has("nested_offset")) s.nested_offset = static_cast<float>(o.get_number("nested_offset"));
  return s;
}

}  // namespace

ImportedWeight import_bnb4(const Bnb4State& s, const LinearTensors& t, int64_t rows, int64_t cols) {
  if (s.quant_type != "nf4" && s.quant_type != "fp4") throw Error("unknown bitsandbytes quant_type", {.file = t.file(), .tensor = t.prefix(), .value = s.quant_type});
  const int64_t n = rows * cols, blocks = (n + s.blocksize - 1) / s.blocksize;
  const TensorView& w = t.get("weight");
  if (w.dtype != DType::U8 || w.numel() != (n + 1) / 2) {
    throw Error("bitsandbytes 4-bit weight must be U8 with " + std::to_string((n + 1) / 2) + " bytes", {.file = t.file(), .tensor = t.name("weight"),
                                                                                                       .value = std::to_string(w.numel())});
  }
  const TensorView& quant_map = t.get("weight.quant_map", DType::F32, {16});
  const TensorView& absmax = t.get("weight.absmax");
  const bool nested = absmax.dtype == DType::U8;
  if (absmax.numel() != blocks || (!nested && absmax.dtype != DType::F32)) {
    throw Error("weight.absmax must be F32 or U8 with one value per " + std::to_string(s.blocksize) + "-block", {.file = t.file(), .tensor = t.name("weight.absmax")});
  }
  const float* code = s.quant_type == "nf4" ? formats::kNf4Code : formats::kBnbFp4Code;
  const TensorView* nested_absmax = nullptr;
  const TensorView* nested_map = nullptr;
  int64_t nested_groups = 0;
  if (nested) {
    nested_groups = (blocks + s.nested_blocksize - 1) / s.nested_blocksize;
    nested_absmax = &t.get("weight.nested_absmax", DType::F32, {nested_groups});
    nested_map = &t.get("weight.nested_quant_map", DType::F32, {256});
  }
  if (!equal_values(quant_map, code, 16)) {
    throw Error("weight.quant_map is not bitsandbytes' " + s.quant_type + " code book", {.file = t.file(), .tensor = t.name("weight.quant_map")});
  }
  const bool lowbit_codes = s.blocksize == 64;
  if (lowbit_codes && !nested && cols % 64 == 0) {
    ImportedWeight out;
    out.format = &format_by_name(s.quant_type);
    out.bytes.resize(out.format->tensor_bytes(rows, cols));
    for (int64_t b = 0; b < blocks; ++b) formats::pack_bnb4_block(load_f32(absmax, b), w.data.data() + 32 * b, out.bytes.data() + 36 * b);
    return out;
  }
  if (lowbit_codes && nested && s.nested_blocksize == 256 && n % 64 == 0 && same_floats(*nested_map, formats::bnb_dynamic_map(), 256)) {
    ImportedWeight out;
    out.format = &format_by_name(s.quant_type + "_dq");
    out.bytes.resize(out.format->tensor_bytes(rows, cols));
    std::vector<float> group_scales(static_cast<size_t>(nested_groups));
    for (int64_t g = 0; g < nested_groups; ++g) group_scales[g] = load_f32(*nested_absmax, g);
    formats::pack_bnb4_dq(w.data.data(), n, absmax.data.data(), group_scales.data(), s.nested_offset, out.bytes.data());
    return out;
  }
  // Any other code book or block size: bnb's formula, exactly.
  return f32_weight(rows, cols, [&](int64_t r, int64_t c) {
    const int64_t i = r * cols + c, b = i / s.blocksize;
    const float a = nested ? load_f32(*nested_map, absmax.data[b]) * load_f32(*nested_absmax, b / s.nested_blocksize) + s.nested_offset : load_f32(absmax, b);
    const uint8_t byte = w.data[i / 2];
    return code[(i % 2 == 0) ? byte >> 4 : byte & 0xF] * a;
  });
}

ImportedWeight import_bnb_int8(const LinearTensors& t, int64_t rows, int64_t cols) {
  const TensorView& w = t.get("weight", DType::I8, {rows, cols});
  const TensorView& scb = t.get("SCB", DType::F32, {rows});
  ImportedWeight out;
  out.format = &format_by_name("bnb_int8");
  out.bytes.resize(out.format->tensor_bytes(rows, cols));
  const uint64_t rb = format_row_bytes(*out.format, cols);
  for (int64_t r = 0; r < rows; ++r) {  // bnb_int8.cpp: f32 SCB, then the int8 codes
    std::memcpy(out.bytes.data() + r * rb, scb.data.data() + 4 * r, 4);
    std::memcpy(out.bytes.data() + r * rb + 4, w.data.data() + r * cols, static_cast<size_t>(cols));
  }
  return out;
}

ImportedWeight read_bnb(const QuantConfig& q, const LinearTensors& t, int64_t rows, int64_t cols) {
  if (t.find("SCB") != nullptr) return import_bnb_int8(t, rows, cols);
  return import_bnb4(read_quant_state(q, t), t, rows, cols);
}

}  // namespace lowbit

// ---- writing (transformers' Params4bit state dict, for lowbit's nf4/fp4 formats) ----

#include "io/checkpoints/export_helpers.h"

namespace lowbit {

std::vector<ExportTensor> write_bnb(const std::string&, const Format& f, std::span<const uint8_t> bytes, int64_t rows, int64_t cols) {
  const std::string name(f.name);
  if (name == "bnb_int8") {  // Int8Params: weight I8 [out, in] and SCB F32 [out]
    std::vector<ExportTensor> out = {{"weight", DType::I8, {rows, cols}, {}}, {"SCB", DType::F32, {rows}, {}}};
    if (bytes.empty()) return out;
    out[0].bytes.resize(static_cast<size_t>(rows * cols));
    out[1].bytes.resize(static_cast<size_t>(4 * rows));
    const uint64_t rb = format_row_bytes(f, cols);
    for (int64_t r = 0; r < rows; ++r) {
      std::memcpy(out[1].bytes.data() + 4 * r, bytes.data() + r * rb, 4);
      std::memcpy(out[0].bytes.data() + r * cols, bytes.data() + r * rb + 4, static_cast<size_t>(cols));
    }
    return out;
  }
  const bool dq = name == "nf4_dq" || name == "fp4_dq";
  if (name != "nf4" && name != "fp4" && !dq) throw Error("--export bnb writes nf4, fp4, nf4_dq, fp4_dq and bnb_int8", {.value = name});
  const std::string type = name.substr(0, 3);
  const int64_t n = rows * cols, blocks = n / 64;
  // bnb stores its code book with +0 for FP4's code 8 (its kernels decode -0 from the sign bit).
  std::vector<float> quant_map(type == "nf4" ? formats::kNf4Code : formats::kBnbFp4Code, (type == "nf4" ? formats::kNf4Code : formats::kBnbFp4Code) + 16);
  quant_map[8] = std::fabs(quant_map[8]);
  Json state = {{"quant_type", type}, {"blocksize", 64}, {"dtype", "float16"}, {"shape", {rows, cols}}};
  std::vector<ExportTensor> out;
  out.push_back({"weight", DType::U8, {n / 2, 1}, {}});
  if (!dq) {
    out.push_back({"weight.absmax", DType::F32, {blocks}, {}});
    out.push_back({"weight.quant_map", DType::F32, {16}, {}});
  } else {
    const int64_t groups = (blocks + 255) / 256;
    out.push_back({"weight.absmax", DType::U8, {blocks}, {}});
    out.push_back({"weight.quant_map", DType::F32, {16}, {}});
    out.push_back({"weight.nested_absmax", DType::F32, {groups}, {}});
    out.push_back({"weight.nested_quant_map", DType::F32, {256}, {}});
    state["nested_blocksize"] = 256;
    state["nested_dtype"] = "float32";
    state["nested_offset"] = -1.17549435e-38f;  // the longest a float prints; the real value replaces it
  }
  // The quant_state's JSON text is sized in the plan before the offset is known: sized for
  // the longest offset, then padded with spaces (which JSON ignores).
  const size_t state_bytes = state.dump().size();
  out.push_back({"weight.quant_state.bitsandbytes__" + type, DType::U8, {static_cast<int64_t>(state_bytes)}, {}});
  if (bytes.empty()) return out;
  if (!dq) {
    std::vector<uint8_t> codes(static_cast<size_t>(n / 2));
    std::vector<float> absmax(static_cast<size_t>(blocks));
    for (int64_t b = 0; b < blocks; ++b) {
      const uint8_t* c = nullptr;
      absmax[b] = formats::bnb4_block_absmax(bytes.data() + 36 * b, &c);
      std::memcpy(codes.data() + 32 * b, c, 32);
    }
    out[0].bytes = std::move(codes);
    out[1].bytes = floats_bytes(absmax);
    out[2].bytes = floats_bytes(quant_map);
  } else {
    const auto parts = formats::bnb4_dq_parts(bytes.data(), n);
    out[0].bytes.assign(parts.codes, parts.codes + n / 2);
    out[1].bytes.assign(parts.qabsmax, parts.qabsmax + blocks);
    out[2].bytes = floats_bytes(quant_map);
    out[3].bytes.assign(parts.group_scales, parts.group_scales + 4 * parts.ngroups);
    out[4].bytes = floats_bytes(std::vector<float>(formats::bnb_dynamic_map(), formats::bnb_dynamic_map() + 256));
  }
  if (dq) state["nested_offset"] = formats::bnb4_dq_parts(bytes.data(), n).offset;
  std::string text = state.dump();
  if (text.size() > state_bytes) throw Error("bnb quant_state text longer than planned", {.value = text});
  text.resize(state_bytes, ' ');
  out.back().bytes.assign(text.begin(), text.end());
  return out;
}

Json bnb_config(const std::string&, const Format& f) {
  const std::string name(f.name);
  if (name == "bnb_int8") {
    return {{"quant_method", "bitsandbytes"}, {"load_in_8bit", true}, {"load_in_4bit", false}, {"llm_int8_threshold", 6.0},
            {"llm_int8_has_fp16_weight", false}, {"llm_int8_skip_modules", {"lm_head"}}};
  }
  return {{"quant_method", "bitsandbytes"},
          {"load_in_4bit", true},
          {"load_in_8bit", false},
          {"bnb_4bit_quant_type", name.substr(0, 3)},
          {"bnb_4bit_use_double_quant", name.ends_with("_dq")},
          {"bnb_4bit_compute_dtype", "float16"},
          {"bnb_4bit_quant_storage", "uint8"},
          {"llm_int8_skip_modules", {"lm_head"}}};
}

}  // namespace lowbit
