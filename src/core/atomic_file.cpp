// AtomicFile: temp file + fsync + rename(2), so readers never see a partial file.
#include "lowbit/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include "lowbit/error.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace lowbit {

std::string temporary_template(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.ends_with("/")) p.pop_back();
  return p + ".tmp." + std::to_string(::getpid()) + ".XXXXXX";
}

std::vector<std::string> dead_writers_temporaries(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path target = fs::path(path).lexically_normal();
  if (!target.has_filename()) target = target.parent_path();
  const fs::path dir = target.parent_path().empty() ? fs::path(".") : target.parent_path();
  const std::string prefix = target.filename().string() + ".tmp.";
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (!name.starts_with(prefix)) continue;
    const std::string rest = name.substr(prefix.size());  // PID.REST
    const auto dot = rest.find('.');
    if (dot == std::string::npos || dot == 0 || rest.find_first_not_of("0123456789") != dot) continue;
    const long pid = std::strtol(rest.substr(0, dot).c_str(), nullptr, 10);
    if (pid <= 0 || pid == ::getpid() || ::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;
    out.push_back((dir / name).string());
  }
  return out;
}

void remove_stale_temporaries(const std::string& path) {
  std::error_code ec;
  for (const std::string& t : dead_writers_temporaries(path)) std::filesystem::remove_all(t, ec);
}

std::string claim_temporary(const std::string& temp) {
  namespace fs = std::filesystem;
  const fs::path old_temp(temp);
  const std::string name = old_temp.filename().string();
  const size_t tmp = name.rfind(".tmp.");
  const size_t dot = tmp == std::string::npos ? std::string::npos : name.find('.', tmp + 5);
  if (dot == std::string::npos) throw Error("not a temporary output's name", {.file = temp});
  const fs::path claimed = old_temp.parent_path() / (name.substr(0, tmp) + ".tmp." + std::to_string(::getpid()) + name.substr(dot));
  if (std::rename(temp.c_str(), claimed.c_str()) != 0) {
    throw Error(std::string("cannot take over the partial output: ") + std::strerror(errno), {.file = temp});
  }
  return claimed.string();
}

uint64_t content_digest(std::span<const uint8_t> bytes) { return XXH3_64bits(bytes.data(), bytes.size()); }

size_t verified_regions(const std::string& file, std::span<const FileRegion> regions) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  std::vector<uint8_t> buf(size_t{4} << 20);
  std::unique_ptr<XXH3_state_t, decltype(&XXH3_freeState)> s(XXH3_createState(), &XXH3_freeState);
  uint64_t at = 0;
  size_t good = 0;
  for (const FileRegion& r : regions) {
    if (r.end < at) break;
    XXH3_64bits_reset(s.get());
    bool whole = true;
    for (uint64_t pos = at; pos < r.end;) {
      const size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), r.end - pos));
      const ssize_t n = ::pread(fd, buf.data(), want, static_cast<off_t>(pos));
      if (n <= 0) {
        whole = false;
        break;
      }
      XXH3_64bits_update(s.get(), buf.data(), static_cast<size_t>(n));
      pos += static_cast<uint64_t>(n);
    }
    if (!whole || XXH3_64bits_digest(s.get()) != r.digest) break;
    ++good;
    at = r.end;
  }
  ::close(fd);
  return good;
}

namespace {

std::shared_ptr<void> new_region_state() {
  XXH3_state_t* s = XXH3_createState();
  if (s == nullptr) throw std::bad_alloc();
  XXH3_64bits_reset(s);
  return std::shared_ptr<void>(s, [](void* p) { XXH3_freeState(static_cast<XXH3_state_t*>(p)); });
}

}  // namespace

AtomicFile::AtomicFile(const std::string& path, const std::string& temp_path, uint64_t keep)
    : path_(path), temp_path_(temp_path), region_(new_region_state()) {
  fd_ = ::open(temp_path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd_ < 0) throw Error(std::string("cannot reopen the partial output: ") + std::strerror(errno), {.file = temp_path});
  if (::ftruncate(fd_, static_cast<off_t>(keep)) != 0 || ::lseek(fd_, static_cast<off_t>(keep), SEEK_SET) < 0) {
    const std::string why = std::strerror(errno);
    ::close(fd_);
    fd_ = -1;
    temp_path_.clear();  // not ours to remove yet: the next --resume may still use it
    throw Error("cannot cut the partial output to its checked part: " + why, {.file = temp_path});
  }
  written_ = writeback_from_ = keep;
}

uint64_t AtomicFile::take_region_digest() {
  auto* s = static_cast<XXH3_state_t*>(region_.get());
  const uint64_t d = XXH3_64bits_digest(s);
  XXH3_64bits_reset(s);
  return d;
}

AtomicFile::AtomicFile(const std::string& path) : path_(path), region_(new_region_state()) {
  remove_stale_temporaries(path);
  std::string templ = temporary_template(path);
  std::vector<char> buf(templ.begin(), templ.end());
  buf.push_back('\0');
  fd_ = ::mkostemp(buf.data(), O_CLOEXEC);
  if (fd_ < 0) {
    throw Error(std::string("cannot create the output's temporary file beside it (") + std::strerror(errno) + ")", {.file = path});
  }
  temp_path_.assign(buf.data());
  ::fchmod(fd_, 0644);  // mkostemp creates 0600; a model file is meant to be shared
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_ && !temp_path_.empty()) ::unlink(temp_path_.c_str());
}

void AtomicFile::write(const void* data, size_t size) {
  const auto* p = static_cast<const uint8_t*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd_, p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Error(std::string("cannot write the output (") + std::strerror(errno) + ") after " + std::to_string(written_) +
                      " bytes; the partial file " + temp_path_ + " is removed and nothing is left under the final name",
                  {.file = path_});
    }
    XXH3_64bits_update(static_cast<XXH3_state_t*>(region_.get()), p, static_cast<size_t>(n));
    p += n;
    size -= static_cast<size_t>(n);
    written_ += static_cast<uint64_t>(n);
  }
  // Start writing large outputs back now (a hint; errors surface at fsync), so the fsync at
  // commit does not wait for the whole file.
  constexpr uint64_t kWritebackBytes = uint64_t{8} << 20;
  if (written_ - writeback_from_ >= kWritebackBytes) {
    ::sync_file_range(fd_, static_cast<off_t>(writeback_from_), static_cast<off_t>(written_ - writeback_from_),
                      SYNC_FILE_RANGE_WRITE);
    writeback_from_ = written_;
  }
}

void AtomicFile::write(std::span<const uint8_t> bytes) { write(bytes.data(), bytes.size()); }

void AtomicFile::write_zeros(size_t count) {
  static const uint8_t zeros[4096] = {};
  while (count > 0) {
    const size_t n = count < sizeof(zeros) ? count : sizeof(zeros);
    write(zeros, n);
    count -= n;
  }
}

void AtomicFile::commit() {
  if (::fsync(fd_) != 0) {
    throw Error(std::string("cannot flush the output to disk (") + std::strerror(errno) + "); the partial file is removed", {.file = path_});
  }
  ::close(fd_);
  fd_ = -1;
  if (std::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    throw Error(std::string("rename failed: ") + std::strerror(errno), {.file = path_});
  }
  committed_ = true;
}

}  // namespace lowbit
