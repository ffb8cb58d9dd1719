// check_unused_tensors (unused_tensors.h).
#include "io/unused_tensors.h"

#include <cctype>

#include "lowbit/error.h"

namespace lowbit {
namespace {

// The layer index of "PREFIX<digits>.…", or -1.
int64_t layer_index(const std::string& name, std::string_view prefix) {
  if (!name.starts_with(prefix)) return -1;
  int64_t v = 0;
  size_t i = prefix.size(), digits = 0;
  for (; i < name.size() && std::isdigit(static_cast<unsigned char>(name[i])) && digits < 9; ++i, ++digits) {
    v = v * 10 + (name[i] - '0');
  }
  if (digits == 0 || i >= name.size() || name[i] != '.') return -1;
  return v;
}

}  // namespace

void check_unused_tensors(const std::string& file, const std::vector<std::string>& present,
                          const std::set<std::string>& used, int64_t n_layers, std::string_view layer_prefix) {
  std::vector<std::string> unused;
  for (const auto& name : present) {
    if (used.count(name) || name.ends_with("rotary_emb.inv_freq")) continue;
    if (const int64_t l = layer_index(name, layer_prefix); l >= n_layers) {
      throw Error("the weights hold layer " + std::to_string(l) + " but the config declares " + std::to_string(n_layers) +
                      " layers",
                  {.file = file, .tensor = name});
    }
    unused.push_back(name);
  }
  if (unused.empty()) return;
  std::string list;
  for (size_t i = 0; i < unused.size() && i < 5; ++i) list += (i ? ", " : "") + unused[i];
  if (unused.size() > 5) list += ", ...";
  warn(std::to_string(unused.size()) + " tensor(s) not used by the model", {.file = file, .value = list});
}

}  // namespace lowbit
