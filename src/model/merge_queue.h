// The merge loop shared by the BPE tokenizers: symbols in a linked list, candidate merges
// of neighbours in a priority queue (best priority first, leftmost on ties), stale
// candidates skipped. O(n log n) on a whole text, where rescanning all pairs is O(n^2).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <queue>
#include <string>
#include <string_view>
#include <vector>

namespace lowbit {

struct MergeSymbol {
  int prev, next;          // neighbours in the list, -1 at the ends
  std::string_view text;   // a view into the text being tokenized; empty once merged away
};

// priority(left, right) -> the merge's priority (higher merges first), or nullopt when the
// two texts may not merge. Returns the surviving symbols in order.
std::vector<std::string_view> merge_symbols(
    std::string_view text, const std::vector<size_t>& char_starts,
    const std::function<std::optional<double>(std::string_view, std::string_view)>& priority);

// Byte offsets where each UTF-8 character of `text` starts (invalid bytes count as one
// character each).
std::vector<size_t> utf8_char_starts(std::string_view text);

}  // namespace lowbit
