// A read-only memory map of a whole file (RAII). Not a reader of any format.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace lowbit {

class MappedFile {
 public:
  explicit MappedFile(const std::string& path);  // throws Error naming the path
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;

  std::span<const uint8_t> bytes() const { return {data_, size_}; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Lets the kernel drop the pages of `range` (which must lie in a read-only file mapping)
// from this process: a streaming pass over a model keeps its resident memory to about one
// tensor. The data stays readable; it is read from the file again if touched.
void release_pages(std::span<const uint8_t> range);

}  // namespace lowbit
