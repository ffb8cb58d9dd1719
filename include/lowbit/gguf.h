// GGUF files (llama.cpp's format), v2 and v3: a validated reader over a mapped file and an
// atomic v3 writer. Only the container: the llama model mapping is in model_io.h.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "lowbit/atomic_file.h"
#include "lowbit/mapped_file.h"

namespace lowbit {

enum class GgufType : uint32_t {
  kU8 = 0, kI8 = 1, kU16 = 2, kI16 = 3, kU32 = 4, kI32 = 5, kF32 = 6, kBool = 7,
  kString = 8, kArray = 9, kU64 = 10, kI64 = 11, kF64 = 12,
};

struct GgufValue {
  GgufType type = GgufType::kU32;
  // Scalars: integers widened (u for unsigned and bool, i for signed), f for floats.
  uint64_t u = 0;
  int64_t i = 0;
  double f = 0;
  std::string s;
  GgufType elem_type = GgufType::kU8;  // arrays
  std::vector<GgufValue> array;

  static GgufValue u32(uint32_t v);
  static GgufValue i32(int32_t v);
  static GgufValue f32(float v);
  static GgufValue boolean(bool v);
  static GgufValue string(std::string v);
  static GgufValue strings(const std::vector<std::string>& v);
  static GgufValue f32s(const std::vector<float>& v);
  static GgufValue i32s(const std::vector<int32_t>& v);

  bool is_integer() const;
  int64_t as_int() const;       // throws unless an integer or bool
  double as_float() const;      // integers and floats
  std::string describe() const; // short text for error messages
};

struct GgufKeyValue {
  std::string key;
  GgufValue value;
};

struct GgufTensor {
  std::string name;
  std::vector<int64_t> dims;   // dims[0] varies fastest (a [out, in] weight has {in, out})
  int32_t type = 0;            // ggml type id
  uint64_t offset = 0;         // from the start of the data section
  std::span<const uint8_t> data;
};

class GgufFile {
 public:
  explicit GgufFile(const std::string& path);  // throws Error naming file, key or tensor

  const std::string& path() const { return map_->path(); }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  const std::vector<GgufKeyValue>& metadata() const { return kv_; }
  const std::vector<GgufTensor>& tensors() const { return tensors_; }
  const GgufValue* find(std::string_view key) const;
  const GgufValue& get(std::string_view key) const;  // throws naming the key
  const GgufTensor* find_tensor(std::string_view name) const;
  std::shared_ptr<MappedFile> map() const { return map_; }

 private:
  std::shared_ptr<MappedFile> map_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  std::vector<GgufKeyValue> kv_;
  std::vector<GgufTensor> tensors_;
};

struct GgufTensorToWrite {
  std::string name;
  std::vector<int64_t> dims;
  int32_t type;
  std::span<const uint8_t> data;
};

struct GgufTensorInfo {
  std::string name;
  std::vector<int64_t> dims;
  int32_t type;
};

// Writes a GGUF v3 file one tensor at a time, so a model never has to be in memory whole:
// the header (with every tensor's size, known from its dims and type) goes first, then
// write_next() once per tensor in order, then commit(). Atomic like every writer.
class GgufStreamWriter {
 public:
  // resume: continue a killed writer's temporary file instead of starting one (its header
  // must be this one's: the caller checked it).
  GgufStreamWriter(const std::string& path, const std::vector<GgufKeyValue>& kv,
                   const std::vector<GgufTensorInfo>& tensors, uint64_t alignment = 32, const PartialOutput* resume = nullptr);
  ~GgufStreamWriter();
  void write_next(std::span<const uint8_t> data);
  void commit();
  // Resuming (lowbit quantize --resume): the file's bytes so far, the XXH3 of those since
  // the previous call, and the temporary file they are in.
  uint64_t position() const;
  uint64_t take_region_digest();
  const std::string& temp_path() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The bytes before the tensor data of a GGUF file with this metadata and these tensors
// (padded to the alignment): the file is that plus each tensor's bytes padded to the
// alignment. Independent of the tensors' types.
uint64_t gguf_header_bytes(const std::vector<GgufKeyValue>& kv, const std::vector<GgufTensorInfo>& tensors, uint64_t alignment = 32);

// Writes a GGUF v3 file atomically; tensor data aligned to `alignment` (general.alignment
// is written when it differs from 32).
void write_gguf(const std::string& path, const std::vector<GgufKeyValue>& kv,
                const std::vector<GgufTensorToWrite>& tensors, uint64_t alignment = 32);

}  // namespace lowbit
