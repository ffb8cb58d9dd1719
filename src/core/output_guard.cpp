// refuse_overwriting_inputs: compares device and inode numbers (stat follows symlinks),
// so every spelling of the same file is one file.
#include "lowbit/output_guard.h"

#include <sys/stat.h>

#include <filesystem>

#include "lowbit/error.h"

namespace lowbit {
namespace {

bool same_file(const struct stat& a, const struct stat& b) { return a.st_dev == b.st_dev && a.st_ino == b.st_ino; }

// Whether the folder `dir` holds `file` (at any depth), comparing each parent by inode.
bool folder_holds(const struct stat& dir, const std::string& file) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path p = fs::weakly_canonical(fs::path(file), ec);
  if (ec) return false;
  for (fs::path parent = p.parent_path(); !parent.empty(); parent = parent.parent_path()) {
    struct stat s;
    if (::stat(parent.c_str(), &s) == 0 && same_file(s, dir)) return true;
    if (parent == parent.root_path()) break;
  }
  return false;
}

}  // namespace

void refuse_overwriting_inputs(const std::string& output, const std::vector<std::string>& inputs) {
  struct stat out;
  if (::stat(output.c_str(), &out) != 0) return;  // nothing there yet: nothing to overwrite
  for (const auto& input : inputs) {
    struct stat in;
    if (input.empty() || ::stat(input.c_str(), &in) != 0) continue;
    if (same_file(out, in) || (S_ISDIR(out.st_mode) && folder_holds(out, input))) {
      throw Error("output would overwrite an input of this command", {.file = output, .value = input});
    }
  }
}

}  // namespace lowbit
