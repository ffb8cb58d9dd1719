// The quantize journal and activation snapshot (quantize_journal.h).
#include "quant/resume/quantize_journal.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "lowbit/atomic_file.h"
#include "lowbit/error.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace lowbit {
namespace {

constexpr char kHeader[] = "lowbit-quantize-journal 1";
constexpr char kSnapshotMagic[8] = {'L', 'B', 'A', 'C', 'T', 'S', '1', '\0'};

std::string hex(uint64_t v) {
  char b[17];
  std::snprintf(b, sizeof(b), "%016llx", static_cast<unsigned long long>(v));
  return b;
}

std::string journal_path(const std::string& temp) { return temp + ".journal"; }
std::string snapshot_path(const std::string& temp) { return temp + ".acts"; }

void write_all(int fd, const std::string& text, const std::string& path) {
  const char* p = text.data();
  size_t n = text.size();
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) throw Error(std::string("cannot write the resume journal: ") + std::strerror(errno), {.file = path});
    p += w;
    n -= static_cast<size_t>(w);
  }
}

std::string region_line(const JournalRegion& r) { return "region " + std::to_string(r.end) + " " + hex(r.digest) + "\n"; }

// A journal's fields; nullopt when it is not one.
struct ParsedJournal {
  RunFingerprint fingerprint;
  std::string data;
  std::vector<JournalRegion> regions;
};

std::optional<ParsedJournal> parse_journal(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  if (!std::getline(in, line) || line != kHeader) return std::nullopt;
  ParsedJournal j;
  int fingerprints = 0;
  bool has_data = false;
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) break;  // a torn last line
    std::istringstream f(text.substr(pos, nl - pos));
    pos = nl + 1;
    std::string key;
    f >> key;
    if (key == "fingerprint") {
      std::string part, value;
      f >> part >> value;
      const uint64_t v = std::strtoull(value.c_str(), nullptr, 16);
      if (part == "options") j.fingerprint.options = v;
      else if (part == "inputs") j.fingerprint.inputs = v;
      else if (part == "build") j.fingerprint.build = v;
      else return std::nullopt;
      ++fingerprints;
    } else if (key == "data") {
      f >> j.data;
      has_data = !j.data.empty() && j.data.find('/') == std::string::npos && j.data != "..";
    } else if (key == "region") {
      std::string end, digest;
      f >> end >> digest;
      if (end.empty() || digest.size() != 16) break;
      j.regions.push_back({std::strtoull(end.c_str(), nullptr, 10), std::strtoull(digest.c_str(), nullptr, 16)});
    } else {
      break;
    }
  }
  if (fingerprints != 3 || !has_data) return std::nullopt;
  return j;
}

}  // namespace

QuantizeJournal::QuantizeJournal(const std::string& temp, const std::string& data, const RunFingerprint& f) {
  open_and_write(temp, data, f, {});
}

QuantizeJournal::QuantizeJournal(const std::string& temp, const std::string& data, const RunFingerprint& f,
                                 const std::vector<JournalRegion>& keep) {
  open_and_write(temp, data, f, keep);
}

void QuantizeJournal::open_and_write(const std::string& temp, const std::string& data, const RunFingerprint& f,
                                     const std::vector<JournalRegion>& regions) {
  path_ = journal_path(temp);
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) throw Error(std::string("cannot create the resume journal: ") + std::strerror(errno), {.file = path_});
  std::string text = std::string(kHeader) + "\nfingerprint options " + hex(f.options) + "\nfingerprint inputs " + hex(f.inputs) +
                     "\nfingerprint build " + hex(f.build) + "\ndata " + data + "\n";
  for (const JournalRegion& r : regions) text += region_line(r);
  write_all(fd_, text, path_);
}

// Whether committed or unwound by an error (its output then goes too), the journal goes;
// only a killed process leaves it.
QuantizeJournal::~QuantizeJournal() { remove(); }

void QuantizeJournal::record(const JournalRegion& r) { write_all(fd_, region_line(r), path_); }

void QuantizeJournal::remove() {
  if (path_.empty()) return;
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  const std::string temp = path_.substr(0, path_.size() - std::string(".journal").size());
  ::unlink(path_.c_str());
  ::unlink(snapshot_path(temp).c_str());
  path_.clear();
}

std::optional<PartialRun> find_partial_run(const std::string& output) {
  namespace fs = std::filesystem;
  std::optional<PartialRun> best;
  fs::file_time_type best_time{};
  std::error_code ec;
  for (const std::string& leftover : dead_writers_temporaries(output)) {
    // TEMP.journal, TEMP being OUTPUT.tmp.PID.SUFFIX
    if (!leftover.ends_with(".journal")) continue;
    const fs::path temp = leftover.substr(0, leftover.size() - std::string(".journal").size());
    const std::string name = temp.filename().string();
    if (name.find('.', name.rfind(".tmp.") + 5) != name.rfind('.')) continue;  // not one SUFFIX
    if (!fs::exists(temp, ec)) continue;
    const auto parsed = parse_journal(leftover);
    if (!parsed) continue;
    const auto time = fs::last_write_time(leftover, ec);
    if (best && time <= best_time) continue;
    best = PartialRun{temp.string(), parsed->data == "." ? temp.string() : (temp / parsed->data).string(), parsed->fingerprint,
                      parsed->regions, {}};
    best_time = time;
  }
  return best;
}

void claim_and_verify(PartialRun& run) {
  namespace fs = std::filesystem;
  const bool data_is_temp = run.data_path == run.temp;
  const std::string data_name = data_is_temp ? "" : fs::path(run.data_path).filename().string();
  const std::string claimed = claim_temporary(run.temp);
  std::rename(journal_path(run.temp).c_str(), journal_path(claimed).c_str());
  if (fs::exists(snapshot_path(run.temp))) std::rename(snapshot_path(run.temp).c_str(), snapshot_path(claimed).c_str());
  run.temp = claimed;
  run.data_path = data_is_temp ? run.temp : (fs::path(claimed) / data_name).string();

  run.verified.assign(run.journaled.begin(), run.journaled.begin() + static_cast<std::ptrdiff_t>(verified_regions(run.data_path, run.journaled)));
}

void discard_partial_run(const PartialRun& run) {
  std::error_code ec;
  std::filesystem::remove_all(run.temp, ec);
  std::filesystem::remove(journal_path(run.temp), ec);
  std::filesystem::remove(snapshot_path(run.temp), ec);
}

void save_activation_snapshot(const std::string& temp, const RunFingerprint& f, int64_t block, std::span<const float> x) {
  AtomicFile out(snapshot_path(temp));
  out.write(kSnapshotMagic, sizeof(kSnapshotMagic));
  const uint64_t head[5] = {f.options, f.inputs, f.build, static_cast<uint64_t>(block), x.size()};
  out.write(head, sizeof(head));
  out.write(x.data(), x.size() * sizeof(float));
  const uint64_t digest = XXH3_64bits(x.data(), x.size() * sizeof(float));
  out.write(&digest, sizeof(digest));
  out.commit();
}

std::optional<ActivationSnapshot> load_activation_snapshot(const std::string& temp, const RunFingerprint& f) {
  std::ifstream in(snapshot_path(temp), std::ios::binary);
  char magic[8];
  uint64_t head[5];
  if (!in.read(magic, 8) || std::memcmp(magic, kSnapshotMagic, 8) != 0 || !in.read(reinterpret_cast<char*>(head), sizeof(head))) return std::nullopt;
  if (!(RunFingerprint{head[0], head[1], head[2]} == f) || head[4] > (uint64_t{1} << 40)) return std::nullopt;
  ActivationSnapshot s{static_cast<int64_t>(head[3]), std::vector<float>(head[4])};
  uint64_t digest = 0;
  if (!in.read(reinterpret_cast<char*>(s.x.data()), static_cast<std::streamsize>(s.x.size() * sizeof(float))) ||
      !in.read(reinterpret_cast<char*>(&digest), sizeof(digest)) || digest != XXH3_64bits(s.x.data(), s.x.size() * sizeof(float))) {
    return std::nullopt;
  }
  return s;
}

}  // namespace lowbit
