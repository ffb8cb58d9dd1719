// Score-ordered BPE (llama2.c, llama.cpp SPM) and its llama2.c tokenizer.bin loader.
#include "model/tokenizer_score_bpe.h"

#include <cstdio>
#include <cmath>
#include <cstring>

#include "lowbit/error.h"
#include "lowbit/mapped_file.h"
#include "model/merge_queue.h"
#include "model/tokenizer_hf_bpe.h"

namespace lowbit {
namespace {

constexpr std::string_view kSpace = "\xE2\x96\x81";  // U+2581, SentencePiece's space

std::string escape_spaces(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 8);
  for (char c : text) {
    if (c == ' ') out += kSpace; else out += c;
  }
  return out;
}

std::string unescape_spaces(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size();) {
    if (text.substr(i, 3) == kSpace) {
      out += ' ';
      i += 3;
    } else {
      out += text[i++];
    }
  }
  return out;
}

// "<0x1F>" -> 31, else -1.
int parse_byte_token(std::string_view t) {
  const auto b = byte_token_value(t);
  return b ? *b : -1;
}

}  // namespace

ScoreBpeTokenizer::ScoreBpeTokenizer(GgufVocab vocab, std::string kind)
    : vocab_(std::move(vocab)), kind_(std::move(kind)) {
  std::fill(std::begin(byte_ids_), std::end(byte_ids_), -1);
  if (vocab_.scores.size() != vocab_.tokens.size()) vocab_.scores.resize(vocab_.tokens.size(), 0.0f);
  if (vocab_.token_types.size() != vocab_.tokens.size()) {
    vocab_.token_types.resize(vocab_.tokens.size(), static_cast<int32_t>(TokenType::kNormal));
  }
  for (size_t i = 0; i < vocab_.tokens.size(); ++i) {
    const auto id = static_cast<int32_t>(i);
    if (vocab_.token_types[i] == static_cast<int32_t>(TokenType::kByte)) {
      const int b = parse_byte_token(vocab_.tokens[i]);
      if (b >= 0) byte_ids_[b] = id;
      continue;
    }
    // Control tokens (<s>, </s>) are never produced from text.
    if (vocab_.token_types[i] == static_cast<int32_t>(TokenType::kControl)) continue;
    ids_.emplace(vocab_.tokens[i], id);
  }
  for (size_t r = 0; r < vocab_.merges.size(); ++r) merge_rank_.emplace(vocab_.merges[r], static_cast<int32_t>(r));
  bos_ = vocab_.bos;
  eos_ = vocab_.eos;
}

std::vector<int32_t> ScoreBpeTokenizer::encode(std::string_view text, bool add_bos) const {
  std::vector<int32_t> out;
  if (add_bos && bos_ >= 0) out.push_back(bos_);
  if (text.empty()) return out;
  const std::string escaped = std::string(kSpace) + escape_spaces(text);
  const auto starts = utf8_char_starts(escaped);
  std::string joined;
  auto priority = [&](std::string_view a, std::string_view b) -> std::optional<double> {
    if (!merge_rank_.empty()) {
      joined.assign(a).append(" ").append(b);
      const auto it = merge_rank_.find(joined);
      if (it == merge_rank_.end()) return std::nullopt;
      return -static_cast<double>(it->second);
    }
    joined.assign(a).append(b);
    const auto it = ids_.find(joined);
    if (it == ids_.end()) return std::nullopt;
    return vocab_.scores[it->second];
  };
  for (std::string_view piece : merge_symbols(escaped, starts, priority)) {
    const auto it = ids_.find(std::string(piece));
    if (it != ids_.end()) {
      out.push_back(it->second);
      continue;
    }
    bool pushed_unk = false;  // a piece without byte tokens becomes one unk
    for (unsigned char c : piece) {
      if (byte_ids_[c] >= 0) {
        out.push_back(byte_ids_[c]);
      } else if (vocab_.unk >= 0 && !pushed_unk) {
        out.push_back(vocab_.unk);
        pushed_unk = true;
      }
    }
  }
  return out;
}

std::string ScoreBpeTokenizer::decode_token(int32_t prev, int32_t id) const {
  if (id < 0 || id >= vocab_size()) return "";
  const auto type = static_cast<TokenType>(vocab_.token_types[id]);
  if (type == TokenType::kControl || type == TokenType::kUnused) return "";
  if (type == TokenType::kByte) {
    const int b = parse_byte_token(vocab_.tokens[id]);
    return b >= 0 ? std::string(1, static_cast<char>(b)) : "";
  }
  std::string piece = unescape_spaces(vocab_.tokens[id]);
  // The space prepended at encoding is dropped after BOS (as llama2.c and llama.cpp do).
  const bool at_start = prev < 0 || (prev == bos_ && vocab_.strip_space_after_bos);
  if (at_start && !piece.empty() && piece[0] == ' ') piece.erase(0, 1);
  return piece;
}

std::shared_ptr<Tokenizer> load_llama2c_tokenizer(const std::string& path, int64_t vocab_size) {
  const MappedFile file(path);
  const auto bytes = file.bytes();
  size_t pos = 0;
  auto need = [&](size_t n, const char* what, int64_t token) {
    if (bytes.size() - pos < n) {
      throw Error(std::string("truncated tokenizer: ") + what +
                      (token >= 0 ? " of token " + std::to_string(token) : std::string()),
                  {.file = path, .value = std::to_string(bytes.size()) + " bytes"});
    }
  };
  auto read_i32 = [&](const char* what, int64_t token) {
    need(4, what, token);
    int32_t v;
    std::memcpy(&v, bytes.data() + pos, 4);
    pos += 4;
    return v;
  };
  const int32_t max_len = read_i32("max_token_length", -1);
  if (max_len <= 0 || max_len > 1 << 16) {
    throw Error("max_token_length out of range", {.file = path, .value = std::to_string(max_len)});
  }
  GgufVocab v;
  v.model = "llama";
  v.unk = 0;
  v.bos = 1;
  v.eos = 2;
  for (int64_t id = 0; id < vocab_size; ++id) {
    need(4, "score", id);
    float score;
    std::memcpy(&score, bytes.data() + pos, 4);
    pos += 4;
    if (!std::isfinite(score)) {
      throw Error("token score is not finite (token " + std::to_string(id) + ")", {.file = path, .value = std::to_string(score)});
    }
    const int32_t len = read_i32("length", id);
    if (len < 0 || len > max_len) {
      throw Error("token length out of range (token " + std::to_string(id) + ")",
                  {.file = path, .value = std::to_string(len)});
    }
    need(static_cast<size_t>(len), "bytes", id);
    std::string text(reinterpret_cast<const char*>(bytes.data() + pos), static_cast<size_t>(len));
    pos += static_cast<size_t>(len);
    // Token names and types as llama.cpp's convert-llama2c-to-ggml writes them.
    TokenType type = TokenType::kNormal;
    if (id == 0) {
      text = "<unk>";
      type = TokenType::kUnknown;
    } else if (id == 1) {
      text = "<s>";
      type = TokenType::kControl;
    } else if (id == 2) {
      text = "</s>";
      type = TokenType::kControl;
    } else if (text.empty()) {
      type = TokenType::kControl;
    } else if (parse_byte_token(text) >= 0) {
      type = TokenType::kByte;
    }
    v.tokens.push_back(escape_spaces(text));
    v.scores.push_back(score);
    v.token_types.push_back(static_cast<int32_t>(type));
  }
  return std::make_shared<ScoreBpeTokenizer>(std::move(v), "llama2.c BPE (" + path + ")");
}

}  // namespace lowbit
