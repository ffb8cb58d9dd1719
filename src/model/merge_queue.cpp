// Priority-queue merging of adjacent symbols (see merge_queue.h).
#include "model/merge_queue.h"

namespace lowbit {

std::vector<size_t> utf8_char_starts(std::string_view text) {
  std::vector<size_t> starts;
  size_t i = 0;
  while (i < text.size()) {
    starts.push_back(i);
    const auto c = static_cast<unsigned char>(text[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 1;
    if (i + len > text.size()) len = 1;
    for (size_t k = 1; k < len; ++k) {
      if ((static_cast<unsigned char>(text[i + k]) & 0xC0) != 0x80) {
        len = 1;
        break;
      }
    }
    i += len;
  }
  return starts;
}

std::vector<std::string_view> merge_symbols(
    std::string_view text, const std::vector<size_t>& starts,
    const std::function<std::optional<double>(std::string_view, std::string_view)>& priority) {
  const int n = static_cast<int>(starts.size());
  std::vector<MergeSymbol> sym(n);
  for (int i = 0; i < n; ++i) {
    const size_t end = i + 1 < n ? starts[i + 1] : text.size();
    sym[i] = {i - 1, i + 1 < n ? i + 1 : -1, text.substr(starts[i], end - starts[i])};
  }
  struct Candidate {
    double priority;
    int left, right;
    size_t size;  // combined length when queued: detects stale candidates
    bool operator<(const Candidate& o) const {
      return priority != o.priority ? priority < o.priority : left > o.left;
    }
  };
  std::priority_queue<Candidate> queue;
  auto consider = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    if (auto p = priority(sym[left].text, sym[right].text)) {
      queue.push({*p, left, right, sym[left].text.size() + sym[right].text.size()});
    }
  };
  for (int i = 0; i + 1 < n; ++i) consider(i, i + 1);
  while (!queue.empty()) {
    const Candidate c = queue.top();
    queue.pop();
    MergeSymbol& l = sym[c.left];
    MergeSymbol& r = sym[c.right];
    if (l.text.empty() || r.text.empty() || l.next != c.right ||
        l.text.size() + r.text.size() != c.size) {
      continue;  // one side was merged into something else since
    }
    l.text = std::string_view(l.text.data(), c.size);
    r.text = {};
    l.next = r.next;
    if (r.next >= 0) sym[r.next].prev = c.left;
    consider(l.prev, c.left);
    consider(c.left, l.next);
  }
  std::vector<std::string_view> out;
  for (int i = n > 0 ? 0 : -1; i >= 0; i = sym[i].next) out.push_back(sym[i].text);
  return out;
}

}  // namespace lowbit
