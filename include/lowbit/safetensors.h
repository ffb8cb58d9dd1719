// safetensors reader (mmap, every offset and size validated) and atomic writer.
// Not a model loader: it knows tensors and metadata, not architectures.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "lowbit/atomic_file.h"
#include "lowbit/dtype.h"
#include "lowbit/mapped_file.h"

namespace lowbit {

struct TensorView {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;      // outermost first, as written (PyTorch order)
  std::span<const uint8_t> data;   // points into the mapped file
  int64_t numel() const;
};

class SafetensorsFile {
 public:
  static constexpr uint64_t kMaxHeaderBytes = 100u * 1000 * 1000;

  // Maps and validates the whole header; throws Error naming the file (and tensor).
  explicit SafetensorsFile(const std::string& path);

  const std::string& path() const { return map_->path(); }
  const std::vector<TensorView>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  const TensorView* find(std::string_view name) const;  // nullptr if absent
  const TensorView& tensor(std::string_view name) const;  // throws if absent

  // The tensor converted to fp32 (any float dtype); throws for integer dtypes.
  std::vector<float> to_f32(const TensorView& t) const;

 private:
  std::shared_ptr<MappedFile> map_;
  std::vector<TensorView> tensors_;
  std::map<std::string, std::string> metadata_;
};

struct TensorToWrite {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  std::span<const uint8_t> data;  // numel * dtype_size bytes
};

struct SafetensorsTensorInfo {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
};

// Writes a safetensors file one tensor at a time (header first: sizes follow from shapes),
// atomically: write_next() once per tensor in order, then commit().
class SafetensorsStreamWriter {
 public:
  // resume: as GgufStreamWriter's.
  SafetensorsStreamWriter(const std::string& path, const std::vector<SafetensorsTensorInfo>& tensors,
                          const std::map<std::string, std::string>& metadata = {}, const PartialOutput* resume = nullptr);
  ~SafetensorsStreamWriter();
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

// Writes atomically (temporary file + rename); the header is padded to 8 bytes.
void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace lowbit
