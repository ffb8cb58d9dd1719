// What lets `lowbit quantize --resume` continue a killed run. Every run keeps, beside its
// temporary output TEMP (a .gguf file, or a folder whose tensors are in one safetensors
// file), a journal TEMP.journal:
//   lowbit-quantize-journal 1
//   fingerprint options|inputs|build HEX   (three lines: what the bytes depend on)
//   data NAME                              (the file the tensors are in, within TEMP; "." for TEMP)
//   region END DIGEST                      (one per finished region, appended as written)
// Region 0 is the header, then one per planned tensor; END is the data file's size after it,
// DIGEST the XXH3-64 of its bytes. A kill (SIGKILL, power loss) leaves TEMP and the journal;
// a torn last line is ignored, and every region is re-hashed before it is trusted. The
// calibrated pass also keeps TEMP.acts, the inputs of the block it is on (ActivationSnapshot).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "lowbit/atomic_file.h"
#include "lowbit/stats_checkpoint.h"

namespace lowbit {

// What a run's bytes depend on, hashed in three parts so a refusal can say which changed.
struct RunFingerprint {
  uint64_t options = 0;  // the plan (each tensor's format and method) and the settings
  uint64_t inputs = 0;   // the input files: path, size, modification time
  uint64_t build = 0;    // the lowbit executable
  bool operator==(const RunFingerprint&) const = default;
};

using JournalRegion = FileRegion;

// Appends regions as they are written; write(2) per line, so a killed process loses none.
class QuantizeJournal {
 public:
  // A new journal for `temp` (its data file `data`, relative to temp: "." for temp itself).
  QuantizeJournal(const std::string& temp, const std::string& data, const RunFingerprint& f);
  // Continues an existing journal, cut to its first `keep` regions.
  QuantizeJournal(const std::string& temp, const std::string& data, const RunFingerprint& f,
                  const std::vector<JournalRegion>& keep);
  ~QuantizeJournal();
  QuantizeJournal(const QuantizeJournal&) = delete;
  QuantizeJournal& operator=(const QuantizeJournal&) = delete;
  void record(const JournalRegion& r);
  void remove();  // at commit: the output is whole, the journal and snapshot go

 private:
  void open_and_write(const std::string& temp, const std::string& data, const RunFingerprint& f,
                      const std::vector<JournalRegion>& regions);
  std::string path_;
  int fd_ = -1;
};

// A killed run's partial output of OUTPUT, checked: the regions that still hash as journaled.
struct PartialRun {
  std::string temp;       // renamed to carry this process's pid (claimed)
  std::string data_path;  // the file the tensors are in
  RunFingerprint fingerprint;
  std::vector<JournalRegion> journaled;  // as the journal lists them
  std::vector<JournalRegion> verified;   // the leading ones whose bytes hash as journaled
};

// The partial output of `output` a dead writer left with a journal (the newest, when there
// are several; the others are left to remove_stale_temporaries). nullopt: none.
std::optional<PartialRun> find_partial_run(const std::string& output);
// Renames the partial output (and journal, snapshot) to this process's pid, so that
// another run's clean-up does not take it while this one continues it; then re-hashes
// each journaled region of the data file, up to the first that differs.
void claim_and_verify(PartialRun& run);
// Removes a claimed partial output, its journal and snapshot (nothing of it can be kept).
void discard_partial_run(const PartialRun& run);

// The calibrated pass's block inputs at the start of block `block` (samples × length × dim
// floats), in TEMP.acts, replaced atomically at each block.
struct ActivationSnapshot {
  int64_t block = 0;
  std::vector<float> x;
};
void save_activation_snapshot(const std::string& temp, const RunFingerprint& f, int64_t block, std::span<const float> x);
// nullopt when absent, torn, of another fingerprint or failing its digest.
std::optional<ActivationSnapshot> load_activation_snapshot(const std::string& temp, const RunFingerprint& f);

}  // namespace lowbit
