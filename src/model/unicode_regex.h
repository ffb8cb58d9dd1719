// Regular expressions with Unicode properties (\p{L}, \p{N}, case-insensitive groups,
// lookahead), as tokenizer.json pre-tokenizers and normalizers write them, compiled once
// with PCRE2 in UTF + UCP mode (JIT when available). Invalid UTF-8 in the subject never
// matches and never stops the search.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lowbit {

struct Span {
  size_t begin, end;  // byte offsets, [begin, end)
};

class UnicodeRegex {
 public:
  // Throws Error naming `where` (file and JSON field) and PCRE2's message when the pattern
  // does not compile.
  UnicodeRegex(std::string_view pattern, const std::string& file, const std::string& where);
  ~UnicodeRegex();
  UnicodeRegex(const UnicodeRegex&) = delete;
  UnicodeRegex& operator=(const UnicodeRegex&) = delete;

  // Successive non-overlapping matches, left to right; an empty match moves the search on by
  // one character.
  std::vector<Span> find_all(std::string_view text) const;
  const std::string& pattern() const { return pattern_; }

 private:
  std::string pattern_;
  void* code_ = nullptr;  // pcre2_code_8
};

// The spans of every occurrence of a literal string (non-overlapping, left to right).
std::vector<Span> find_all_literal(std::string_view text, std::string_view literal);

}  // namespace lowbit
