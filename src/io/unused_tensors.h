// What a reader does with tensors present in a file but not used by the model it built.
// Not the readers themselves.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace lowbit {

// A tensor of a layer at or beyond `n_layers` (named `layer_prefix` + index + ".") means
// the config declares fewer layers than the weights hold: an Error naming `file`, the
// tensor and both counts. Any other unused tensor is a warning that names it (buffers
// such as rotary_emb.inv_freq, which hold no weights, are skipped silently).
void check_unused_tensors(const std::string& file, const std::vector<std::string>& present,
                          const std::set<std::string>& used, int64_t n_layers, std::string_view layer_prefix);

}  // namespace lowbit
