// The score-ordered BPE of llama2.c and of GGUF "llama" vocabularies (llama.cpp's SPM
// tokenizer): spaces become U+2581, one is prepended, UTF-8 characters merge pairwise, best
// token score first; characters no token covers fall back to <0xXX> byte tokens (or unk).
// When the vocabulary carries BPE merges (lowbit writes them for tokenizer.json models),
// merge ranks order the merges instead of scores.
#pragma once

#include <unordered_map>

#include "lowbit/tokenizer.h"

namespace lowbit {

class ScoreBpeTokenizer : public Tokenizer {
 public:
  ScoreBpeTokenizer(GgufVocab vocab, std::string kind);

  std::vector<int32_t> encode(std::string_view text, bool add_bos) const override;
  std::string decode_token(int32_t prev, int32_t id) const override;
  int64_t vocab_size() const override { return static_cast<int64_t>(vocab_.tokens.size()); }
  GgufVocab gguf_vocab() const override { return vocab_; }
  std::string kind() const override { return kind_; }

 private:
  GgufVocab vocab_;
  std::string kind_;
  std::unordered_map<std::string, int32_t> ids_;
  std::unordered_map<std::string, int32_t> merge_rank_;  // "left right" -> rank
  int32_t byte_ids_[256];
};

}  // namespace lowbit
