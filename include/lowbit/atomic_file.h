// Writes a file so that its final name only ever holds a complete file: data goes to a
// temporary file in the same directory, which commit() flushes and renames over the
// target. Destroying an uncommitted AtomicFile removes the temporary.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace lowbit {

// The temporary name for `path` ("PATH.tmp.PID.XXXXXX", a mkstemp/mkdtemp template): the
// writer's pid in the name lets a later run tell a dead writer's leftovers from a live one's.
std::string temporary_template(const std::string& path);

// Removes "PATH.tmp.PID.*" files and folders left by writers that no longer run (a
// process killed with SIGKILL cannot clean up after itself). Those of live processes stay.
void remove_stale_temporaries(const std::string& path);

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
  uint64_t writeback_from_ = 0;  // bytes before this were handed to writeback
  bool committed_ = false;
};

}  // namespace lowbit
