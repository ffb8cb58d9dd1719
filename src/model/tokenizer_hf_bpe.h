// Hugging Face tokenizer.json BPE tokenizers, run as tokenizers runs them: added tokens cut
// out of the raw text, the normalizer chain, the pre-tokenizer chain, then the BPE model
// on each piece. Built from a tokenizer.json, or from a GGUF vocabulary (its
// lowbit.tokenizer.pipeline, or the pipeline llama.cpp runs for its tokenizer.ggml.pre), so
// a model read from either gives the same ids through this one code path.
#pragma once

#include <optional>
#include <string_view>

#include "core/json_fields.h"
#include "lowbit/tokenizer.h"
#include "model/added_tokens.h"
#include "model/bpe_model.h"
#include "model/pre_tokenizers.h"
#include "model/text_normalizers.h"

namespace lowbit {

// Everything a tokenizer.json BPE tokenizer is made of. `pipeline` holds the parts that are
// configuration rather than vocabulary, in tokenizer.json's own shapes:
//   {"normalizer": ..., "pre_tokenizer": ..., "decoder": ...,
//    "model": {"byte_fallback", "fuse_unk", "ignore_merges", "continuing_subword_prefix",
//              "end_of_word_suffix"}}
// GGUF stores it as lowbit.tokenizer.pipeline.
struct BpeSpec {
  std::vector<std::string> tokens;      // id -> token text
  std::vector<int32_t> token_types;     // TokenType per id
  std::vector<std::string> merges;      // "left right", in rank order
  std::vector<AddedToken> added;        // matched in the text before the model runs
  Json pipeline = Json::object();
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
  // `source` names the file for errors in the pipeline.
  HfBpeTokenizer(BpeSpec spec, std::string kind, const std::string& source);

  std::vector<int32_t> encode(std::string_view text, bool add_bos) const override;
  std::string decode_token(int32_t prev, int32_t id) const override;
  int64_t vocab_size() const override { return static_cast<int64_t>(spec_.tokens.size()); }
  GgufVocab gguf_vocab() const override;
  std::string kind() const override { return kind_; }

 private:
  // What the decoder chain does to a token's text.
  struct DecodeRules {
    bool byte_level = false;          // ByteLevel: characters back to bytes
    std::string space_symbol;         // Replace/Metaspace: this text back to ' '
    bool byte_fallback = false;       // <0xHH> tokens back to their byte
    bool strip_leading_space = false; // Strip/Metaspace: one space dropped at the start
  };
  void encode_plain(std::string_view text, bool at_start, std::vector<int32_t>& out,
                    std::unordered_map<std::string, std::vector<int32_t>>& cache) const;

  BpeSpec spec_;
  std::string kind_;
  std::vector<TextNormalizer> normalizers_;
  std::vector<PreTokenizer> pre_tokenizers_;
  BpeModel model_;
  AddedTokenMatcher raw_added_, normalized_added_;
  DecodeRules decode_;
};

// The pipeline object of a tokenizer.json root (see BpeSpec::pipeline).
Json pipeline_of_tokenizer_json(const JsonObject& root);

}  // namespace lowbit
