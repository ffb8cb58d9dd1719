// Measurement checkpoints (lowbit/stats_checkpoint.h). The file: "LBSTATS1", the kind, the
// fingerprint, the items done, the statistics' length and bytes, and their XXH3.
#include "lowbit/stats_checkpoint.h"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "lowbit/atomic_file.h"
#include "lowbit/error.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace lowbit {
namespace {

constexpr char kMagic[8] = {'L', 'B', 'S', 'T', 'A', 'T', 'S', '1'};

}  // namespace

FingerprintPart& FingerprintPart::add(const std::string& s) {
  const uint64_t n = s.size();
  hash_ = XXH3_64bits_withSeed(&n, sizeof(n), hash_);
  hash_ = XXH3_64bits_withSeed(s.data(), s.size(), hash_);
  return *this;
}

FingerprintPart& FingerprintPart::add_file(const std::string& path) {
  if (path.empty()) return *this;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return add(path + " (absent)");
  return add(path + " " + std::to_string(st.st_size) + " " + std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec));
}

uint64_t running_build_fingerprint() {
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return FingerprintPart().add_file(ec ? std::string("unknown") : exe.string()).value();
}

void StatsWriter::put_bytes(const void* data, size_t n) {
  const size_t at = bytes_.size();
  bytes_.resize(at + n);
  if (n > 0) std::memcpy(bytes_.data() + at, data, n);
}

void StatsWriter::put_string(const std::string& s) {
  put<uint64_t>(s.size());
  put_bytes(s.data(), s.size());
}

void StatsWriter::put_doubles(const std::vector<double>& v) {
  put<uint64_t>(v.size());
  put_bytes(v.data(), v.size() * sizeof(double));
}

const uint8_t* StatsReader::take(size_t n) {
  if (n > bytes_.size() - at_) throw Error("checkpoint ends early", {.file = source_, .value = std::to_string(at_)});
  const uint8_t* p = bytes_.data() + at_;
  at_ += n;
  return p;
}

std::string StatsReader::get_string() {
  const auto n = get<uint64_t>();
  if (n > bytes_.size() - at_) throw Error("checkpoint ends early", {.file = source_, .value = std::to_string(at_)});
  const auto* p = take(static_cast<size_t>(n));
  return std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(n));
}

std::vector<double> StatsReader::get_doubles() {
  const auto n = get<uint64_t>();
  if (n > (bytes_.size() - at_) / sizeof(double)) throw Error("checkpoint ends early", {.file = source_, .value = std::to_string(at_)});
  std::vector<double> v(static_cast<size_t>(n));
  if (n > 0) std::memcpy(v.data(), take(v.size() * sizeof(double)), v.size() * sizeof(double));
  return v;
}

StatsCheckpointer::StatsCheckpointer(const StatsCheckpoint& options, std::string kind, uint64_t fingerprint)
    : options_(options), kind_(std::move(kind)), fingerprint_(fingerprint), last_(std::chrono::steady_clock::now()) {}

std::optional<SavedStats> StatsCheckpointer::load() {
  if (options_.path.empty() || !std::filesystem::exists(options_.path)) {
    if (options_.resume) note_ = "--resume: no checkpoint " + options_.path + "; started from the beginning";
    return std::nullopt;
  }
  if (!options_.resume) {
    note_ = "the checkpoint of an earlier run, " + options_.path + ", is replaced (--resume would continue it)";
    return std::nullopt;
  }
  std::ifstream in(options_.path, std::ios::binary);
  std::vector<uint8_t> all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  StatsReader r(std::move(all), options_.path);
  char magic[8];
  for (char& c : magic) c = static_cast<char>(r.get<uint8_t>());
  if (std::memcmp(magic, kMagic, 8) != 0) throw Error("not a lowbit checkpoint", {.file = options_.path});
  const std::string kind = r.get_string();
  if (kind != kind_) throw Error("--resume: this checkpoint is " + kind + "'s, not " + kind_ + "'s", {.file = options_.path});
  if (r.get<uint64_t>() != fingerprint_) {
    throw Error("--resume: the checkpoint was made with other inputs or options; rerun without --resume to start again",
                {.file = options_.path});
  }
  const auto done = r.get<int64_t>();
  std::vector<uint8_t> stats(static_cast<size_t>(r.get<uint64_t>()));
  for (uint8_t& b : stats) b = r.get<uint8_t>();
  if (r.get<uint64_t>() != content_digest(stats) || !r.done()) throw Error("the checkpoint is damaged (its digest does not match)", {.file = options_.path});
  note_ = "--resume: continued after " + std::to_string(done) + " items from " + options_.path;
  return SavedStats{done, StatsReader(std::move(stats), options_.path)};
}

bool StatsCheckpointer::due() const {
  return !options_.path.empty() &&
         std::chrono::duration<double>(std::chrono::steady_clock::now() - last_).count() >= options_.every_seconds;
}

void StatsCheckpointer::save(int64_t done, const StatsWriter& stats) {
  if (options_.path.empty()) return;
  StatsWriter f;
  for (char c : kMagic) f.put(c);
  f.put_string(kind_);
  f.put(fingerprint_);
  f.put(done);
  f.put<uint64_t>(stats.bytes().size());
  AtomicFile out(options_.path);
  out.write(f.bytes());
  out.write(stats.bytes());
  const uint64_t digest = content_digest(stats.bytes());
  out.write(&digest, sizeof(digest));
  out.commit();
  last_ = std::chrono::steady_clock::now();
}

void StatsCheckpointer::finish() {
  if (!options_.path.empty()) std::filesystem::remove(options_.path);
}

}  // namespace lowbit
