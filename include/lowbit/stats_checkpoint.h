// A long measurement's progress on disk, so that a killed run can be continued (imatrix,
// sensitivity, eval --resume). Every `every_seconds` the statistics accumulated so far and
// the count of work items (chunks, matrices) done replace OUTPUT.checkpoint atomically; a
// rerun of the same command with resume starts after them. Statistics are stored exactly
// (doubles as their bits), and the work items are done in the same order, so the result is
// the one an uninterrupted run gives. The file holds a fingerprint of what the numbers
// depend on (the command's inputs and options); another one is refused, naming the file.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

namespace lowbit {

// Hashes strings into a fingerprint, in order (XXH3).
class FingerprintPart {
 public:
  FingerprintPart& add(const std::string& s);
  FingerprintPart& add_file(const std::string& path);  // path, size and mtime; "" adds nothing
  uint64_t value() const { return hash_; }

 private:
  uint64_t hash_ = 0x9e3779b97f4a7c15ull;
};
uint64_t running_build_fingerprint();  // the lowbit executable's size and modification time

struct StatsCheckpoint {
  std::string path;            // "": no checkpoint
  bool resume = false;         // continue from `path` when it is there
  double every_seconds = 30;   // at most this much work is lost to a kill
};

// Bytes of statistics, written and read back in the same order.
class StatsWriter {
 public:
  template <typename T>
  void put(const T& v) {
    put_bytes(&v, sizeof(T));
  }
  void put_bytes(const void* data, size_t n);
  void put_string(const std::string& s);
  void put_doubles(const std::vector<double>& v);
  const std::vector<uint8_t>& bytes() const { return bytes_; }

 private:
  std::vector<uint8_t> bytes_;
};

class StatsReader {
 public:
  StatsReader(std::vector<uint8_t> bytes, std::string source) : bytes_(std::move(bytes)), source_(std::move(source)) {}
  template <typename T>
  T get() {
    T v;
    std::memcpy(&v, take(sizeof(T)), sizeof(T));
    return v;
  }
  std::string get_string();
  std::vector<double> get_doubles();
  void get_bytes(void* out, size_t n) {
    if (n > 0) std::memcpy(out, take(n), n);
  }
  bool done() const { return at_ == bytes_.size(); }

 private:
  const uint8_t* take(size_t n);  // throws Error naming the source when too short
  std::vector<uint8_t> bytes_;
  std::string source_;
  size_t at_ = 0;
};

// What a checkpoint held: the work items done and the statistics after them.
struct SavedStats {
  int64_t done = 0;
  StatsReader stats;
};

// A run's checkpoint: load() at the start (with resume), due() and save() as items finish,
// finish() at the end (the file goes).
class StatsCheckpointer {
 public:
  // kind: "imatrix", "sensitivity", "eval"; fingerprint: what the numbers depend on.
  StatsCheckpointer(const StatsCheckpoint& options, std::string kind, uint64_t fingerprint);
  // With resume and a checkpoint of this kind and fingerprint: its contents. Without
  // resume an existing checkpoint is left to be replaced (a warning says so); one of
  // another fingerprint with resume is an Error naming the file.
  std::optional<SavedStats> load();
  bool due() const;
  void save(int64_t done, const StatsWriter& stats);
  void finish();  // the run is complete: the checkpoint goes
  const std::string& note() const { return note_; }  // what load() found, for the user

 private:
  StatsCheckpoint options_;
  std::string kind_;
  uint64_t fingerprint_;
  std::chrono::steady_clock::time_point last_;
  std::string note_;
};

}  // namespace lowbit
