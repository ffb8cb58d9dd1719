// Hugging Face-style rank-ordered BPE (see tokenizer_hf_bpe.h).
#include "model/tokenizer_hf_bpe.h"

#include <algorithm>
#include <array>
#include <cstring>

#include "lowbit/error.h"
#include "model/merge_queue.h"

namespace lowbit {
namespace {

constexpr std::string_view kSpace = "\xE2\x96\x81";  // U+2581

std::string encode_utf8(uint32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    s += static_cast<char>(0xE0 | (cp >> 12));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    s += static_cast<char>(0xF0 | (cp >> 18));
    s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

uint32_t decode_utf8(std::string_view s, size_t* len) {
  const auto c = static_cast<unsigned char>(s[0]);
  auto cont = [&](size_t i) { return static_cast<uint32_t>(static_cast<unsigned char>(s[i]) & 0x3F); };
  if (c < 0x80 || s.size() < 2) { *len = 1; return c; }
  if ((c >> 5) == 0x6) { *len = 2; return ((c & 0x1F) << 6) | cont(1); }
  if ((c >> 4) == 0xE && s.size() >= 3) { *len = 3; return ((c & 0x0F) << 12) | (cont(1) << 6) | cont(2); }
  if ((c >> 3) == 0x1E && s.size() >= 4) {
    *len = 4;
    return ((c & 0x07) << 18) | (cont(1) << 12) | (cont(2) << 6) | cont(3);
  }
  *len = 1;
  return c;
}

const std::array<std::string, 256>& byte_table() {
  static const std::array<std::string, 256> table = [] {
    std::array<std::string, 256> t;
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
      t[b] = encode_utf8(printable ? static_cast<uint32_t>(b) : next++);
    }
    return t;
  }();
  return table;
}

std::string byte_level_encode(std::string_view bytes) {
  std::string out;
  for (unsigned char c : bytes) out += byte_table()[c];
  return out;
}

std::string byte_level_decode(std::string_view text) {
  static const std::unordered_map<std::string, char> inverse = [] {
    std::unordered_map<std::string, char> m;
    for (int b = 0; b < 256; ++b) m.emplace(byte_table()[b], static_cast<char>(b));
    return m;
  }();
  std::string out;
  for (size_t i = 0; i < text.size();) {
    size_t len;
    decode_utf8(text.substr(i), &len);
    const auto it = inverse.find(std::string(text.substr(i, len)));
    if (it != inverse.end()) out += it->second; else out.append(text.substr(i, len));
    i += len;
  }
  return out;
}

// Character classes of GPT-2's pattern. ASCII exactly; beyond ASCII a few blocks of
// spaces and punctuation are recognised and everything else counts as a letter.
enum class CharClass { kLetter, kNumber, kSpace, kOther };

CharClass classify(uint32_t cp) {
  if (cp < 0x80) {
    if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z')) return CharClass::kLetter;
    if (cp >= '0' && cp <= '9') return CharClass::kNumber;
    if (cp == ' ' || (cp >= 0x09 && cp <= 0x0D)) return CharClass::kSpace;
    return CharClass::kOther;
  }
  if (cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 ||
      cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000) {
    return CharClass::kSpace;
  }
  if ((cp >= 0x80 && cp <= 0xBF) || (cp >= 0x2010 && cp <= 0x2027) || (cp >= 0x2030 && cp <= 0x205E) ||
      (cp >= 0x3001 && cp <= 0x3003) || (cp >= 0xFF01 && cp <= 0xFF0F) || cp == 0xD7 || cp == 0xF7) {
    return CharClass::kOther;
  }
  if ((cp >= 0x660 && cp <= 0x669) || (cp >= 0xFF10 && cp <= 0xFF19)) return CharClass::kNumber;
  return CharClass::kLetter;
}

}  // namespace

const std::string& gpt2_byte_to_unicode(uint8_t b) { return byte_table()[b]; }

std::vector<std::string_view> gpt2_split(std::string_view text) {
  // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
  struct Cp {
    size_t pos, len;
    CharClass cls;
  };
  std::vector<Cp> cps;
  for (size_t i = 0; i < text.size();) {
    size_t len;
    const uint32_t cp = decode_utf8(text.substr(i), &len);
    cps.push_back({i, len, classify(cp)});
    i += len;
  }
  std::vector<std::string_view> out;
  const size_t n = cps.size();
  auto span = [&](size_t a, size_t b) {  // code points [a, b)
    const size_t begin = cps[a].pos;
    const size_t end = b < n ? cps[b].pos : text.size();
    out.push_back(text.substr(begin, end - begin));
  };
  size_t i = 0;
  while (i < n) {
    if (text[cps[i].pos] == '\'' && i + 1 < n) {
      static constexpr std::string_view kSuffixes[] = {"re", "ve", "ll", "s", "t", "m", "d"};
      bool matched = false;
      for (auto suffix : kSuffixes) {
        if (text.substr(cps[i].pos + 1, suffix.size()) == suffix) {
          const size_t end = i + 1 + suffix.size();
          span(i, end);
          i = end;
          matched = true;
          break;
        }
      }
      if (matched) continue;
    }
    size_t start = i, j = i;
    if (text[cps[i].pos] == ' ' && i + 1 < n && cps[i + 1].cls != CharClass::kSpace) j = i + 1;
    const CharClass cls = cps[j].cls;
    if (cls != CharClass::kSpace) {
      while (j < n && cps[j].cls == cls) ++j;
      span(start, j);
      i = j;
      continue;
    }
    while (j < n && cps[j].cls == CharClass::kSpace) ++j;
    const size_t run = j - i;
    if (j < n && run > 1) j -= 1;  // leave the last space to prefix the next word
    span(i, j);
    i = j;
  }
  return out;
}

std::optional<uint8_t> byte_token_value(std::string_view token) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  if (token.size() != 6 || !token.starts_with("<0x") || token[5] != '>') return std::nullopt;
  const int hi = hex(token[3]), lo = hex(token[4]);
  if (hi < 0 || lo < 0) return std::nullopt;
  return static_cast<uint8_t>(16 * hi + lo);
}

void validate_bpe_spec(const BpeSpec& spec, const std::string& file) {
  std::unordered_map<std::string_view, int32_t> ids;
  for (size_t i = 0; i < spec.tokens.size(); ++i) {
    if (spec.tokens[i].empty()) throw Error("the vocabulary has no token with id " + std::to_string(i), {.file = file});
    ids.emplace(spec.tokens[i], static_cast<int32_t>(i));
  }
  std::unordered_map<std::string_view, size_t> rank;
  size_t duplicates = 0;
  std::string first_duplicate;
  for (size_t r = 0; r < spec.merges.size(); ++r) {
    const std::string& m = spec.merges[r];
    const auto space = m.find(' ');
    if (space == std::string::npos || space == 0 || space + 1 == m.size() || m.find(' ', space + 1) != std::string::npos) {
      throw Error("merge " + std::to_string(r) + " is not two tokens separated by one space", {.file = file, .value = m.substr(0, 80)});
    }
    const std::string_view a(m.data(), space), b(m.data() + space + 1, m.size() - space - 1);
    for (const std::string_view part : {a, b}) {
      if (!ids.count(part)) {
        throw Error("merge " + std::to_string(r) + " names a token that is not in the vocabulary",
                    {.file = file, .value = m.substr(0, 80)});
      }
    }
    if (!ids.count(std::string(a) + std::string(b))) {
      throw Error("merge " + std::to_string(r) + " makes a token that is not in the vocabulary", {.file = file, .value = m.substr(0, 80)});
    }
    if (!rank.emplace(m, r).second && duplicates++ == 0) first_duplicate = m.substr(0, 80);
  }
  if (duplicates > 0) {
    warn(std::to_string(duplicates) + " duplicate merge(s); the first rank of each is used", {.file = file, .value = first_duplicate});
  }
}

HfBpeTokenizer::HfBpeTokenizer(BpeSpec spec, std::string kind) : spec_(std::move(spec)), kind_(std::move(kind)) {
  std::fill(std::begin(byte_ids_), std::end(byte_ids_), -1);
  spec_.token_types.resize(spec_.tokens.size(), static_cast<int32_t>(TokenType::kNormal));
  for (size_t i = 0; i < spec_.tokens.size(); ++i) {
    ids_.emplace(spec_.tokens[i], static_cast<int32_t>(i));
    const std::string& t = spec_.tokens[i];
    if (const auto b = byte_token_value(t)) byte_ids_[*b] = static_cast<int32_t>(i);
  }
  for (size_t r = 0; r < spec_.merges.size(); ++r) merge_rank_.emplace(spec_.merges[r], static_cast<int32_t>(r));
  std::sort(spec_.specials.begin(), spec_.specials.end(),
            [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  bos_ = spec_.bos;
  eos_ = spec_.eos;
}

void HfBpeTokenizer::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  std::string joined;
  auto priority = [&](std::string_view a, std::string_view b) -> std::optional<double> {
    joined.assign(a).append(" ").append(b);
    const auto it = merge_rank_.find(joined);
    if (it == merge_rank_.end()) return std::nullopt;
    return -static_cast<double>(it->second);
  };
  for (std::string_view piece : merge_symbols(word, utf8_char_starts(word), priority)) {
    const auto it = ids_.find(std::string(piece));
    if (it != ids_.end()) {
      out.push_back(it->second);
      continue;
    }
    bool all_bytes = spec_.byte_fallback;
    for (unsigned char c : piece) all_bytes = all_bytes && byte_ids_[c] >= 0;
    if (all_bytes) {
      for (unsigned char c : piece) out.push_back(byte_ids_[c]);
    } else if (spec_.unk >= 0 && !(spec_.fuse_unk && !out.empty() && out.back() == spec_.unk)) {
      out.push_back(spec_.unk);
    }
  }
}

void HfBpeTokenizer::encode_plain(std::string_view text, std::vector<int32_t>& out) const {
  if (text.empty()) return;
  if (spec_.mode == BpeSpec::Mode::kByteLevel) {
    std::string prefixed = spec_.prepend_space && text[0] != ' ' ? " " + std::string(text) : std::string(text);
    for (std::string_view word : gpt2_split(prefixed)) encode_word(byte_level_encode(word), out);
    return;
  }
  std::string normalized = spec_.prepend_space ? std::string(kSpace) : std::string();
  for (char c : text) {
    if (c == ' ') normalized += kSpace; else normalized += c;
  }
  if (!spec_.split_words) return encode_word(normalized, out);
  size_t start = 0;  // words begin at each U+2581
  for (size_t i = 3; i <= normalized.size(); ++i) {
    if (i == normalized.size() || normalized.compare(i, 3, kSpace) == 0) {
      encode_word(std::string_view(normalized).substr(start, i - start), out);
      start = i;
    }
  }
}

std::vector<int32_t> HfBpeTokenizer::encode(std::string_view text, bool add_bos) const {
  std::vector<int32_t> out;
  if (add_bos && spec_.add_bos && bos_ >= 0) out.push_back(bos_);
  size_t plain_start = 0, i = 0;
  while (i < text.size()) {
    bool matched = false;
    for (const auto& [content, id] : spec_.specials) {
      if (!content.empty() && text.compare(i, content.size(), content) == 0) {
        encode_plain(text.substr(plain_start, i - plain_start), out);
        out.push_back(id);
        i += content.size();
        plain_start = i;
        matched = true;
        break;
      }
    }
    if (!matched) ++i;
  }
  encode_plain(text.substr(plain_start), out);
  return out;
}

std::string HfBpeTokenizer::decode_token(int32_t prev, int32_t id) const {
  if (id < 0 || id >= vocab_size()) return "";
  if (spec_.token_types[id] == static_cast<int32_t>(TokenType::kControl)) return "";
  const std::string& t = spec_.tokens[id];
  if (spec_.mode == BpeSpec::Mode::kByteLevel) return byte_level_decode(t);
  if (spec_.byte_fallback && byte_ids_[0] >= 0) {
    if (const auto b = byte_token_value(t)) return std::string(1, static_cast<char>(*b));
  }
  std::string out;
  for (size_t i = 0; i < t.size();) {
    if (t.compare(i, 3, kSpace) == 0) {
      out += ' ';
      i += 3;
    } else {
      out += t[i++];
    }
  }
  // tokenizers' Strip decoder removes one leading space of the whole decoded text.
  if (prev < 0 && spec_.strip_leading_space && !out.empty() && out[0] == ' ') out.erase(0, 1);
  return out;
}

GgufVocab HfBpeTokenizer::gguf_vocab() const {
  GgufVocab v;
  v.model = spec_.mode == BpeSpec::Mode::kByteLevel ? "gpt2" : "llama";
  v.tokens = spec_.tokens;
  v.token_types = spec_.token_types;
  v.merges = spec_.merges;
  v.bos = spec_.bos;
  v.eos = spec_.eos;
  v.unk = spec_.unk;
  v.add_bos = spec_.add_bos;
  v.strip_space_after_bos = false;  // the Strip decoder acts at the start of the text only
  if (v.model == "llama") {
    // llama.cpp orders SentencePiece-style merges by token score: score = -(rank of the
    // merge that makes the token), 0 for tokens no merge makes. lowbit itself reads the
    // merges back and uses their ranks.
    v.scores.assign(v.tokens.size(), 0.0f);
    for (size_t r = 0; r < spec_.merges.size(); ++r) {
      const auto& m = spec_.merges[r];
      const size_t sp = m.find(' ');
      const auto it = ids_.find(m.substr(0, sp) + m.substr(sp + 1));
      if (it != ids_.end() && v.scores[it->second] == 0.0f) v.scores[it->second] = -static_cast<float>(r + 1);
    }
    for (size_t i = 0; i < v.tokens.size(); ++i) {
      const auto& t = v.tokens[i];
      if (v.token_types[i] == static_cast<int32_t>(TokenType::kNormal) && t.size() == 6 && t.compare(0, 3, "<0x") == 0) {
        v.token_types[i] = static_cast<int32_t>(TokenType::kByte);
      }
    }
  }
  return v;
}

}  // namespace lowbit
