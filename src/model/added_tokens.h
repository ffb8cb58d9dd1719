// Added tokens (tokenizer.json "added_tokens"): texts that become one id wherever they occur,
// cut out before the normalizer and pre-tokenizers run, as tokenizers' AddedVocabulary
// does: leftmost-longest matching, `single_word` (only between non-word characters),
// `lstrip`/`rstrip` (the match takes the whitespace beside it), and `normalized` (matched
// in the normalized text instead of the raw one).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace lowbit {

struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool special = false, single_word = false, lstrip = false, rstrip = false, normalized = false;
};

// A run of text: either plain text (id < 0) or one added token.
struct TextSegment {
  std::string_view text;
  int32_t id = -1;
  size_t offset = 0;  // where it starts in the text that was split
};

class AddedTokenMatcher {
 public:
  AddedTokenMatcher() = default;
  // `patterns[i]` is what is searched for token `tokens[i]` (its content, or its content
  // normalized).
  AddedTokenMatcher(std::vector<AddedToken> tokens, std::vector<std::string> patterns);

  // The text cut into plain runs and added tokens, covering all of it in order. Empty plain
  // runs are left out.
  std::vector<TextSegment> split(std::string_view text) const;
  bool empty() const { return tokens_.empty(); }

 private:
  std::vector<AddedToken> tokens_;
  std::vector<std::string> patterns_;
  // First byte -> indices of the patterns starting with it, longest first.
  std::unordered_map<unsigned char, std::vector<size_t>> by_first_byte_;
};

}  // namespace lowbit
