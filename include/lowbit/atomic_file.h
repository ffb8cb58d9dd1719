// Writes a file so that its final name only ever holds a complete file: data goes to a
// temporary file in the same directory, which commit() flushes and renames over the
// target. Destroying an uncommitted AtomicFile removes the temporary.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace lowbit {

class AtomicFile {
 public:
  explicit AtomicFile(const std::string& path);  // throws Error naming the path
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(std::span<const uint8_t> bytes);
  void write(const void* data, size_t size);
  void write_zeros(size_t count);
  uint64_t bytes_written() const { return written_; }
  void commit();  // fsync + rename; the file then exists under its final name

  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::string temp_path_;
  int fd_ = -1;
  uint64_t written_ = 0;
  bool committed_ = false;
};

}  // namespace lowbit
