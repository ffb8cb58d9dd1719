// Writes a file so that its final name only ever holds a complete file: data goes to a
// temporary file in the same directory, which commit() flushes and renames over the
// target. Destroying an uncommitted AtomicFile removes the temporary.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace lowbit {

// The temporary name for `path` ("PATH.tmp.PID.XXXXXX", a mkstemp/mkdtemp template): the
// writer's pid in the name lets a later run tell a dead writer's leftovers from a live one's.
std::string temporary_template(const std::string& path);

// The "PATH.tmp.PID.*" files and folders beside `path` whose writer (PID) no longer runs:
// a process killed with SIGKILL cannot clean up after itself. Those of live processes and
// of this one are not listed.
std::vector<std::string> dead_writers_temporaries(const std::string& path);
// Removes them.
void remove_stale_temporaries(const std::string& path);
// Renames a dead writer's "PATH.tmp.PID.REST" to carry this process's pid, so that another
// run's clean-up does not take it while this one continues it; returns the new name.
std::string claim_temporary(const std::string& temp);

// Where a stream writer continues a killed writer's temporary file: after its first
// `tensors` tensors, which end at byte `bytes`.
struct PartialOutput {
  std::string temp_path;
  size_t tensors = 0;
  uint64_t bytes = 0;
};

// XXH3-64 of bytes, as the digests below are taken.
uint64_t content_digest(std::span<const uint8_t> bytes);

// A stretch of a file a journal or checkpoint can check later: it ends at byte `end` (it
// starts where the one before ended, or at 0) and its bytes hash to `digest`.
struct FileRegion {
  uint64_t end = 0, digest = 0;
};
// How many leading regions of `file` still hash as recorded (0 when it cannot be read).
size_t verified_regions(const std::string& file, std::span<const FileRegion> regions);

class AtomicFile {
 public:
  explicit AtomicFile(const std::string& path);  // throws Error naming the path
  // Continues the temporary file `temp_path` a killed writer of `path` left, cut to its
  // first `keep` bytes (they were checked by the caller); commit() renames it as usual.
  AtomicFile(const std::string& path, const std::string& temp_path, uint64_t keep);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(std::span<const uint8_t> bytes);
  void write(const void* data, size_t size);
  void write_zeros(size_t count);
  uint64_t bytes_written() const { return written_; }
  // XXH3-64 of the bytes written since the previous call (or the start / the resume
  // point): a region of the file a journal can check later.
  uint64_t take_region_digest();
  void commit();  // fsync + rename; the file then exists under its final name

  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return temp_path_; }

 private:
  std::string path_;
  std::string temp_path_;
  int fd_ = -1;
  uint64_t written_ = 0;
  uint64_t writeback_from_ = 0;  // bytes before this were handed to writeback
  bool committed_ = false;
  std::shared_ptr<void> region_;  // XXH3 state of the current region
};

}  // namespace lowbit
