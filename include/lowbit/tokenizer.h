// Tokenizers: text <-> token ids. Implementations: llama2.c tokenizer.bin and GGUF "llama"
// vocabularies (score-ordered BPE with byte fallback), SentencePiece .model files
// (libsentencepiece), Hugging Face tokenizer.json BPE (metaspace or byte-level) and GGUF
// "gpt2" vocabularies. Every tokenizer can describe itself as a GGUF vocabulary.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace lowbit {

// llama.cpp's token types (tokenizer.ggml.token_type).
enum class TokenType : int32_t { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

// What GGUF stores of a vocabulary.
struct GgufVocab {
  std::string model;                 // "llama" (SentencePiece-style) or "gpt2" (byte-level BPE)
  std::vector<std::string> tokens;
  std::vector<float> scores;         // "llama"
  std::vector<int32_t> token_types;
  std::vector<std::string> merges;   // "a b" in rank order ("gpt2"; "llama" from a tokenizer.json)
  std::string pre;                   // tokenizer.ggml.pre: llama.cpp's pre-tokenizer type ("gpt2")
  // lowbit.tokenizer.pipeline: a tokenizer.json's normalizer, pre-tokenizer, decoder, BPE
  // options and added tokens, as JSON text ("" when the tokenizer did not come from one).
  std::string pipeline;
  int32_t bos = -1, eos = -1, unk = -1;
  bool add_bos = true;
  // Decoding drops the space before the first word after BOS (llama2.c, SentencePiece). A
  // tokenizer.json whose decoder strips only at the start of the text keeps it; GGUF
  // carries this as lowbit.tokenizer.keep_space_after_bos.
  bool strip_space_after_bos = true;
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // Encodes raw bytes (no newline translation); BOS first when add_bos and the vocabulary
  // has one.
  virtual std::vector<int32_t> encode(std::string_view text, bool add_bos) const = 0;
  // The bytes token `id` stands for when it follows `prev` (-1 at the start).
  virtual std::string decode_token(int32_t prev, int32_t id) const = 0;
  virtual int64_t vocab_size() const = 0;
  virtual GgufVocab gguf_vocab() const = 0;
  virtual std::string kind() const = 0;  // for `lowbit info`
  int32_t bos() const { return bos_; }
  int32_t eos() const { return eos_; }

  std::string decode(const std::vector<int32_t>& ids) const;

 protected:
  int32_t bos_ = -1, eos_ = -1;
};

// llama2.c tokenizer.bin: int32 max_token_length, then per token: f32 score, int32 length,
// bytes. BOS 1, EOS 2, byte tokens <0x00>..<0xFF> at ids 3..258.
std::shared_ptr<Tokenizer> load_llama2c_tokenizer(const std::string& path, int64_t vocab_size);
// SentencePiece .model file.
std::shared_ptr<Tokenizer> load_sentencepiece_tokenizer(const std::string& path);
// Hugging Face tokenizer.json (model type BPE).
std::shared_ptr<Tokenizer> load_hf_tokenizer(const std::string& path);
// From a GGUF vocabulary ("llama" or "gpt2").
std::shared_ptr<Tokenizer> tokenizer_from_gguf_vocab(const GgufVocab& vocab, const std::string& source);

}  // namespace lowbit
