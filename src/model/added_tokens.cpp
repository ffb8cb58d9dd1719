// Added-token matching (see added_tokens.h), following tokenizers' AddedVocabulary
// find_matches: the leftmost match wins, the longest at that position; a single_word
// token with a word character beside it is skipped (the search resumes after it); lstrip
// and rstrip extend the match over the whitespace before and after it, never into an
// earlier match.
#include "model/added_tokens.h"

#include <algorithm>

#include "model/unicode_text.h"

namespace lowbit {
namespace {

// The code point ending at byte `end` of text (end > 0).
uint32_t code_point_before(std::string_view text, size_t end) {
  size_t s = end - 1;
  while (s > 0 && (static_cast<unsigned char>(text[s]) & 0xC0) == 0x80) --s;
  return unicode::next_code_point(text, s);
}

bool is_word(uint32_t cp) { return unicode::is_alphanumeric(cp) || cp == '_'; }

}  // namespace

AddedTokenMatcher::AddedTokenMatcher(std::vector<AddedToken> tokens, std::vector<std::string> patterns)
    : tokens_(std::move(tokens)), patterns_(std::move(patterns)) {
  for (size_t i = 0; i < patterns_.size(); ++i) {
    if (!patterns_[i].empty()) by_first_byte_[static_cast<unsigned char>(patterns_[i][0])].push_back(i);
  }
  for (auto& [byte, list] : by_first_byte_) {
    std::stable_sort(list.begin(), list.end(), [&](size_t a, size_t b) { return patterns_[a].size() > patterns_[b].size(); });
  }
}

std::vector<TextSegment> AddedTokenMatcher::split(std::string_view text) const {
  std::vector<TextSegment> out;
  size_t plain = 0, i = 0;
  auto emit_plain = [&](size_t end) {
    if (end > plain) out.push_back({text.substr(plain, end - plain), -1, plain});
  };
  while (i < text.size()) {
    const auto it = by_first_byte_.find(static_cast<unsigned char>(text[i]));
    size_t hit = SIZE_MAX;
    if (it != by_first_byte_.end()) {
      for (size_t k : it->second) {
        if (text.compare(i, patterns_[k].size(), patterns_[k]) == 0) {
          hit = k;
          break;
        }
      }
    }
    if (hit == SIZE_MAX) {
      ++i;
      continue;
    }
    const AddedToken& t = tokens_[hit];
    size_t start = i, stop = i + patterns_[hit].size();
    if (t.single_word) {
      const bool word_before = start > 0 && is_word(code_point_before(text, start));
      size_t j = stop;
      const bool word_after = stop < text.size() && is_word(unicode::next_code_point(text, j));
      if (word_before || word_after) {
        i = stop;
        continue;
      }
    }
    if (t.lstrip) {
      while (start > plain && unicode::is_whitespace(code_point_before(text, start))) {
        --start;
        while (start > plain && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
      }
    }
    if (t.rstrip) {
      while (stop < text.size()) {
        size_t j = stop;
        if (!unicode::is_whitespace(unicode::next_code_point(text, j))) break;
        stop = j;
      }
    }
    emit_plain(start);
    out.push_back({text.substr(start, stop - start), t.id, start});
    plain = i = stop;
  }
  emit_plain(text.size());
  return out;
}

}  // namespace lowbit
