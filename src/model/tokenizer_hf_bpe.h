// Rank-ordered BPE as Hugging Face `tokenizers` runs it, in the two shapes Llama-family
// models use: metaspace (spaces -> U+2581, optional prepended space, byte fallback) and
// GPT-2 byte-level (bytes mapped to printable code points, the GPT-2 split pattern).
// Built from a tokenizer.json or from a GGUF "gpt2" vocabulary.
#pragma once

#include <optional>
#include <string_view>
#include <unordered_map>

#include "lowbit/tokenizer.h"

namespace lowbit {

struct BpeSpec {
  enum class Mode { kMetaspace, kByteLevel };
  Mode mode = Mode::kMetaspace;
  std::vector<std::string> tokens;      // id -> token text
  std::vector<int32_t> token_types;     // TokenType per id
  std::vector<std::string> merges;      // "left right", in rank order
  std::vector<std::pair<std::string, int32_t>> specials;  // matched verbatim in the text
  bool prepend_space = true;            // metaspace: prepend U+2581; byte-level: a space
  bool split_words = false;             // metaspace: merges stop at word starts
  bool strip_leading_space = true;      // decoding: drop the first leading space
  bool byte_fallback = false;
  bool fuse_unk = false;
  int32_t unk = -1, bos = -1, eos = -1;
  bool add_bos = false;
};

// The byte of a byte-fallback token "<0xHH>" (two hex digits), or nullopt for any other text.
std::optional<uint8_t> byte_token_value(std::string_view token);

inline constexpr int64_t kMaxVocab = int64_t{1} << 24;  // token ids are below this

// Refuses a spec that would be used wrongly: an id with no token, a merge whose parts or
// result are not tokens (Hugging Face refuses these too). Duplicate merges are a warning;
// the first rank counts. Errors name `file` and the merge or id.
void validate_bpe_spec(const BpeSpec& spec, const std::string& file);

class HfBpeTokenizer : public Tokenizer {
 public:
  HfBpeTokenizer(BpeSpec spec, std::string kind);

  std::vector<int32_t> encode(std::string_view text, bool add_bos) const override;
  std::string decode_token(int32_t prev, int32_t id) const override;
  int64_t vocab_size() const override { return static_cast<int64_t>(spec_.tokens.size()); }
  GgufVocab gguf_vocab() const override;
  std::string kind() const override { return kind_; }

 private:
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;
  void encode_plain(std::string_view text, std::vector<int32_t>& out) const;

  BpeSpec spec_;
  std::string kind_;
  std::unordered_map<std::string, int32_t> ids_;
  std::unordered_map<std::string, int32_t> merge_rank_;
  int32_t byte_ids_[256];
};

// GPT-2's reversible byte <-> printable code point mapping, as UTF-8 strings.
const std::string& gpt2_byte_to_unicode(uint8_t b);
// Splits text with GPT-2's pre-tokenizer pattern (Unicode classes approximated: see .cpp).
std::vector<std::string_view> gpt2_split(std::string_view text);

}  // namespace lowbit
