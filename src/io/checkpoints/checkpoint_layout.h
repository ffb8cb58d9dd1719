// Quantized checkpoints of other libraries (GPTQ, AWQ, bitsandbytes, compressed-tensors,
// block FP8), read linear by linear into lowbit weights. One file per layout, each a row of
// the table in layout_table.cpp. A layout's values enter lowbit unchanged: into the lowbit
// format that holds them exactly (intN groups, nf4/fp4, fp8 per row), or as f32 when none
// does (act-order groups, block-wise FP8 scales), never requantized.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/json_fields.h"
#include "lowbit/format.h"
#include "lowbit/model.h"
#include "lowbit/safetensors.h"

namespace lowbit {

// quantization_config of config.json (or AutoGPTQ's quantize_config.json), as read.
struct QuantConfig {
  std::string method;         // quant_method: gptq, awq, bitsandbytes, compressed-tensors, fp8
  int bits = 4;
  int64_t group_size = 128;   // -1: one group per row
  bool sym = true;
  bool desc_act = false;
  bool zero_point = true;     // awq
  std::string format;         // gptq: "gptq" (v1) or "gptq_v2"; awq: "gemm"; compressed-tensors: the format
  std::string file;           // where it was read, for messages
  Json raw = Json::object();  // the whole block
};

// Reads it from `dir`: config.json's quantization_config, else quantize_config.json.
// method is "" when the folder holds no quantized checkpoint.
QuantConfig read_quant_config(const std::string& dir);

// The tensors of one linear layer, found by suffix ("qweight", "scales", "weight", ...).
class LinearTensors {
 public:
  using Finder = std::function<const TensorView*(const std::string& name)>;
  LinearTensors(std::string prefix, std::string file, Finder find) : prefix_(std::move(prefix)), file_(std::move(file)), find_(std::move(find)) {}

  const TensorView* find(std::string_view suffix) const { return find_(prefix_ + "." + std::string(suffix)); }
  // Throws Error naming the file and the tensor when it is absent.
  const TensorView& get(std::string_view suffix) const;
  // The tensor with this suffix must have this dtype and shape; else an Error naming the
  // file, the tensor and what was found.
  const TensorView& get(std::string_view suffix, DType dtype, const std::vector<int64_t>& shape) const;
  std::string name(std::string_view suffix) const { return prefix_ + "." + std::string(suffix); }
  const std::string& prefix() const { return prefix_; }
  const std::string& file() const { return file_; }

 private:
  std::string prefix_, file_;
  Finder find_;
};

// A weight in a lowbit format, owning its bytes.
struct ImportedWeight {
  const Format* format = nullptr;
  std::vector<uint8_t> bytes;
};

// One tensor of a linear in a written checkpoint: prefix + "." + suffix.
struct ExportTensor {
  std::string suffix;
  DType dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;  // empty when only the plan was asked for
};

struct CheckpointLayout {
  const char* name;                  // for messages
  std::vector<std::string> methods;  // the quant_method values it reads
  // The suffixes of one linear's tensors (those present are consumed).
  std::vector<std::string> suffixes;
  // rows = out_features, cols = in_features.
  ImportedWeight (*read)(const QuantConfig& q, const LinearTensors& t, int64_t rows, int64_t cols);
  // --export names this layout writes ("gptq", "gptq_v2", ...).
  std::vector<std::string> export_names;
  // The layout's tensors for one linear held in lowbit format f, in the order written; with
  // empty `bytes` only names, dtypes and shapes (the plan). An Error naming the format when
  // the layout cannot hold it exactly.
  std::vector<ExportTensor> (*write)(const std::string& variant, const Format& f, std::span<const uint8_t> bytes, int64_t rows, int64_t cols);
  // quantization_config for a model whose linears are all in f, as the library writes it.
  Json (*config)(const std::string& variant, const Format& f);
};

// The activation scheme config.json records (activation_scheme.cpp): lowbit's
// quantization_config.activations, or compressed-tensors' input_activations; none
// otherwise. An Error naming the file for a scheme lowbit does not run.
ActivationScheme read_activation_scheme(const std::string& dir);
Json lowbit_activation_config(const ActivationScheme& a);
// input_activations of a compressed-tensors config group (null for float activations).
Json compressed_tensors_input_activations(const ActivationScheme& a);

const std::vector<CheckpointLayout>& checkpoint_layouts();
// The layout that reads quant_method `q.method`; an Error naming q.file otherwise.
const CheckpointLayout& checkpoint_layout_for(const QuantConfig& q);
// The layout that writes --export `name`; an Error listing the names otherwise.
const CheckpointLayout& checkpoint_layout_for_export(const std::string& name);

// bits, group size (0: one group per row) and symmetry of an int{bits}_{gG,pc}_{sym,asym}
// format; nullopt for any other format.
struct IntFormatShape {
  int bits;
  int64_t group;
  bool sym;
};
std::optional<IntFormatShape> int_format_shape(const Format& f);

// ---- entry points the oracle tests call directly ----

// bitsandbytes 4-bit quant_state parameters (from weight.quant_state.bitsandbytes__*).
struct Bnb4State {
  std::string quant_type = "nf4";
  int64_t blocksize = 64, nested_blocksize = 256;
  float nested_offset = 0;
};
ImportedWeight import_bnb4(const Bnb4State& s, const LinearTensors& t, int64_t rows, int64_t cols);
ImportedWeight import_bnb_int8(const LinearTensors& t, int64_t rows, int64_t cols);
// FP8 E4M3 with a per-tensor or per-row scale (`scale_name`), into fp8_e4m3.
ImportedWeight import_fp8_rows(const LinearTensors& t, const char* scale_name, int64_t rows, int64_t cols);

// ---- helpers shared by the layout files ----

// An affine integer grid as GPTQ/AWQ/compressed-tensors store one: codes [rows][cols],
// zero points and fp16 scales [rows][groups], and each column's group.
struct AffineGrid {
  int bits = 4;
  int64_t rows = 0, cols = 0, groups = 0;
  std::vector<uint8_t> codes;
  std::vector<int32_t> zeros;
  std::vector<uint16_t> scales;      // fp16 bits
  std::vector<int32_t> group_of_col;
  int32_t zero(int64_t r, int64_t g) const { return zeros[r * groups + g]; }
  uint16_t scale(int64_t r, int64_t g) const { return scales[r * groups + g]; }
};
// Into lowbit's int{bits}_g{32,64,128,pc}_{sym,asym} when the groups are consecutive runs
// of such a size and the zeros fit; else the exact values, scale·(q − zero), as f32.
ImportedWeight import_affine_grid(const AffineGrid& g, const std::string& file, const std::string& tensor);

// The value of bits [bit, bit+width) of a little-endian stream of 32-bit words, where
// word(i) gives word i.
template <typename Word>
uint32_t stream_bits(Word word, uint64_t bit, int width) {
  const uint64_t w = bit / 32, s = bit % 32;
  uint64_t v = static_cast<uint32_t>(word(w)) >> s;
  if (s + width > 32) v |= static_cast<uint64_t>(static_cast<uint32_t>(word(w + 1))) << (32 - s);
  return static_cast<uint32_t>(v & ((uint64_t{1} << width) - 1));
}

// Little-endian element reads from a tensor's bytes.
int32_t load_i32(const TensorView& t, uint64_t i);
uint16_t load_u16(const TensorView& t, uint64_t i);
float load_f32(const TensorView& t, uint64_t i);
// Element i of an F32, F16 or BF16 tensor, as float (an Error naming the tensor otherwise).
float load_float(const TensorView& t, uint64_t i, const std::string& file);
// The exact f32 weight of values computed by `value(r, c)`.
ImportedWeight f32_weight(int64_t rows, int64_t cols, const std::function<float(int64_t, int64_t)>& value);

}  // namespace lowbit
