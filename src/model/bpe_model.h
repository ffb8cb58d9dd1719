// The BPE model of tokenizer.json ("model": {"type": "BPE"}), on ids: a word's characters
// become symbols, then the adjacent pair with the lowest merge rank merges (leftmost on
// ties) until no pair has a merge. Options as in tokenizers: ignore_merges (a word that is
// itself a token is taken whole), byte_fallback (<0xHH> tokens for characters outside the
// vocabulary), unk and fuse_unk, continuing_subword_prefix and end_of_word_suffix.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace lowbit {

struct BpeOptions {
  int32_t unk = -1;
  bool byte_fallback = false, fuse_unk = false, ignore_merges = false;
  std::string continuing_subword_prefix, end_of_word_suffix;
};

class BpeModel {
 public:
  BpeModel() = default;
  // tokens: id -> text; merges: "left right" in rank order (validated beforehand).
  BpeModel(const std::vector<std::string>& tokens, const std::vector<std::string>& merges, BpeOptions options);

  // Appends the ids of one pre-tokenized word. `cache` (may be null) remembers words seen
  // in this call's text.
  void encode(std::string_view word, std::vector<int32_t>& out, std::unordered_map<std::string, std::vector<int32_t>>* cache) const;
  int32_t id_of(std::string_view token) const;  // -1 when absent
  const BpeOptions& options() const { return options_; }

 private:
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  void merge_word(std::string_view word, std::vector<int32_t>& out) const;

  BpeOptions options_;
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> ids_;
  struct Merge {
    int32_t rank, result;
  };
  std::unordered_map<uint64_t, Merge> merges_;  // (left id << 32 | right id) -> merge
  int32_t byte_ids_[256];
};

}  // namespace lowbit
