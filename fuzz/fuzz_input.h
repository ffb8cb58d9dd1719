// Shared by the libFuzzer harnesses: the fuzzer's bytes as a file path (an in-memory
// memfd, so no disk I/O), and the rule every harness follows: lowbit::Error is the one
// acceptable way to fail; any other exception, signal or sanitizer report is a finding.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "lowbit/error.h"

namespace lowbit::fuzz {

// The bytes as a file at /proc/self/fd/N, removed when this goes out of scope.
class InputFile {
 public:
  InputFile(const uint8_t* data, size_t size) {
    fd_ = ::memfd_create("lowbit-fuzz", MFD_CLOEXEC);
    if (fd_ < 0) std::abort();
    for (size_t done = 0; done < size;) {
      const ssize_t n = ::write(fd_, data + done, size - done);
      if (n <= 0) std::abort();
      done += static_cast<size_t>(n);
    }
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  ~InputFile() { ::close(fd_); }
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  int fd_ = -1;
  std::string path_;
};

// The shared models and data, for harnesses that need a fixed second file.
inline std::string shared_dir() {
  const char* env = std::getenv("LOWBIT_SHARED_DIR");
  return env ? env : LOWBIT_SHARED_DIR;
}

// Runs `body` on the input; a lowbit::Error is a clean refusal.
template <typename Body>
int run(const uint8_t* data, size_t size, Body body) {
  const InputFile in(data, size);
  try {
    body(in.path());
  } catch (const lowbit::Error&) {
  }
  return 0;
}

}  // namespace lowbit::fuzz
