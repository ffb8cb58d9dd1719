// SentencePiece .model files through Debian's libsentencepiece: encoding with the model's
// own normalizer, decoding piece by piece, and the GGUF "llama" vocabulary it converts to.
#include <sentencepiece_processor.h>


#include "lowbit/error.h"
#include "lowbit/tokenizer.h"
#include "model/tokenizer_hf_bpe.h"

namespace lowbit {
namespace {

class SentencePieceTokenizer : public Tokenizer {
 public:
  explicit SentencePieceTokenizer(const std::string& path) : path_(path) {
    sentencepiece::util::Status status;
    try {
      status = sp_.Load(path);
    } catch (const std::exception& e) {
      // libsentencepiece throws from its trie builder on some malformed models (a
      // zero-length piece): the library's boundary is where that becomes an Error.
      throw Error(std::string("not a usable SentencePiece model: ") + e.what(), {.file = path});
    }
    if (!status.ok()) throw Error("not a SentencePiece model: " + status.ToString(), {.file = path});
    bos_ = sp_.bos_id();
    eos_ = sp_.eos_id();
  }

  std::vector<int32_t> encode(std::string_view text, bool add_bos) const override {
    std::vector<int> ids;
    const auto status = sp_.Encode(text, &ids);
    if (!status.ok()) throw Error("SentencePiece encode failed: " + status.ToString(), {.file = path_});
    std::vector<int32_t> out;
    if (add_bos && bos_ >= 0) out.push_back(bos_);
    out.insert(out.end(), ids.begin(), ids.end());
    return out;
  }

  std::string decode_token(int32_t prev, int32_t id) const override {
    if (id < 0 || id >= sp_.GetPieceSize() || sp_.IsControl(id) || sp_.IsUnused(id)) return "";
    const std::string piece = sp_.IdToPiece(id);
    if (sp_.IsByte(id)) {
      // "<0xHH>"; anything else is printed as it is.
      const auto b = byte_token_value(piece);
      return b ? std::string(1, static_cast<char>(*b)) : piece;
    }
    std::string out;
    for (size_t i = 0; i < piece.size();) {
      if (piece.compare(i, 3, "\xE2\x96\x81") == 0) {
        out += ' ';
        i += 3;
      } else {
        out += piece[i++];
      }
    }
    if ((prev == bos_ || prev < 0) && !out.empty() && out[0] == ' ') out.erase(0, 1);
    return out;
  }

  int64_t vocab_size() const override { return sp_.GetPieceSize(); }
  std::string kind() const override { return "SentencePiece (" + path_ + ")"; }

  GgufVocab gguf_vocab() const override {
    GgufVocab v;
    v.model = "llama";
    for (int id = 0; id < sp_.GetPieceSize(); ++id) {
      v.tokens.push_back(sp_.IdToPiece(id));
      v.scores.push_back(sp_.GetScore(id));
      TokenType t = TokenType::kNormal;
      if (sp_.IsUnknown(id)) t = TokenType::kUnknown;
      else if (sp_.IsControl(id)) t = TokenType::kControl;
      else if (sp_.IsUnused(id)) t = TokenType::kUnused;
      else if (sp_.IsByte(id)) t = TokenType::kByte;
      v.token_types.push_back(static_cast<int32_t>(t));
    }
    v.bos = bos_;
    v.eos = eos_;
    v.unk = sp_.unk_id();
    return v;
  }

 private:
  std::string path_;
  sentencepiece::SentencePieceProcessor sp_;
};

}  // namespace

std::shared_ptr<Tokenizer> load_sentencepiece_tokenizer(const std::string& path) {
  return std::make_shared<SentencePieceTokenizer>(path);
}

}  // namespace lowbit
