// Hugging Face tokenizer.json BPE tokenizers (see tokenizer_hf_bpe.h).
#include "model/tokenizer_hf_bpe.h"

#include <algorithm>
#include <unordered_set>

#include "lowbit/error.h"
#include "model/byte_level.h"
#include "model/gguf_pre_tokenizers.h"
#include "model/tokenizer_json_parts.h"

namespace lowbit {

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
  std::unordered_set<std::string_view> seen;
  size_t duplicates = 0;
  std::string first_duplicate, joined;
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
    joined.assign(a).append(b);
    if (!ids.count(joined)) {
      throw Error("merge " + std::to_string(r) + " makes a token that is not in the vocabulary", {.file = file, .value = m.substr(0, 80)});
    }
    if (!seen.insert(m).second && duplicates++ == 0) first_duplicate = m.substr(0, 80);
  }
  if (duplicates > 0) {
    warn(std::to_string(duplicates) + " duplicate merge(s); the first rank of each is used", {.file = file, .value = first_duplicate});
  }
}

Json pipeline_of_tokenizer_json(const JsonObject& root) {
  Json p = Json::object();
  for (const char* key : {"normalizer", "pre_tokenizer", "decoder"}) {
    const Json* v = root.find(key);
    p[key] = v ? *v : Json();
  }
  const JsonObject model = root.get_object("model");
  Json m = Json::object();
  for (const char* key : {"byte_fallback", "fuse_unk", "ignore_merges"}) m[key] = model.get_bool(key, false);
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) m[key] = model.has(key) ? model.get_string(key) : "";
  p["model"] = m;
  return p;
}

HfBpeTokenizer::HfBpeTokenizer(BpeSpec spec, std::string kind, const std::string& source) : spec_(std::move(spec)), kind_(std::move(kind)) {
  spec_.token_types.resize(spec_.tokens.size(), static_cast<int32_t>(TokenType::kNormal));
  const JsonObject root(spec_.pipeline, source);
  normalizers_ = build_normalizers(root);
  pre_tokenizers_ = build_pre_tokenizers(root);
  BpeOptions options;
  if (const auto m = root.find_object("model")) {
    options.byte_fallback = m->get_bool("byte_fallback", false);
    options.fuse_unk = m->get_bool("fuse_unk", false);
    options.ignore_merges = m->get_bool("ignore_merges", false);
    options.continuing_subword_prefix = m->get_string("continuing_subword_prefix", "");
    options.end_of_word_suffix = m->get_string("end_of_word_suffix", "");
  }
  options.unk = spec_.unk;
  model_ = BpeModel(spec_.tokens, spec_.merges, options);

  // Added tokens: the raw ones are searched as written, the normalized ones as the
  // normalizer turns them.
  std::vector<AddedToken> raw, normalized;
  std::vector<std::string> raw_patterns, normalized_patterns;
  for (const AddedToken& t : spec_.added) {
    if (t.content.empty()) continue;
    if (t.normalized && !normalizers_.empty()) {
      std::string n = t.content;
      apply_normalizers(normalizers_, n);
      normalized.push_back(t);
      normalized_patterns.push_back(std::move(n));
    } else {
      raw.push_back(t);
      raw_patterns.push_back(t.content);
    }
  }
  raw_added_ = AddedTokenMatcher(std::move(raw), std::move(raw_patterns));
  normalized_added_ = AddedTokenMatcher(std::move(normalized), std::move(normalized_patterns));

  for (const JsonObject& d : flatten_components(root, "decoder", "decoders")) {
    const std::string type = d.get_string("type");
    if (type == "ByteLevel") {
      decode_.byte_level = true;
    } else if (type == "Replace" && d.get_string("content", "") == " ") {
      decode_.space_symbol = read_pattern(d).text;
    } else if (type == "Metaspace") {
      decode_.space_symbol = d.get_string("replacement", "\xE2\x96\x81");
      const bool prefix = d.get_bool("add_prefix_space", true);
      decode_.strip_leading_space = d.get_string("prepend_scheme", prefix ? "always" : "never") != "never";
    } else if (type == "ByteFallback") {
      decode_.byte_fallback = true;
    } else if (type == "Strip" && d.get_string("content", "") == " " && d.get_int("start", 0) == 1) {
      decode_.strip_leading_space = true;
    } else if (type != "Fuse") {
      throw Error("unsupported tokenizer.json decoder '" + type + "' at '" + d.where() + "'", {.file = source, .value = json_excerpt(d.json())});
    }
  }
  bos_ = spec_.bos;
  eos_ = spec_.eos;
}

void HfBpeTokenizer::encode_plain(std::string_view text, bool at_start, std::vector<int32_t>& out,
                                  std::unordered_map<std::string, std::vector<int32_t>>& cache) const {
  std::string normalized(text);
  apply_normalizers(normalizers_, normalized);
  for (const TextSegment& s : normalized_added_.split(normalized)) {
    if (s.id >= 0) {
      out.push_back(s.id);
      continue;
    }
    std::vector<PreToken> pieces{{std::string(s.text), at_start && s.offset == 0}};
    apply_pre_tokenizers(pre_tokenizers_, pieces);
    for (const PreToken& p : pieces) model_.encode(p.text, out, &cache);
  }
}

std::vector<int32_t> HfBpeTokenizer::encode(std::string_view text, bool add_bos) const {
  std::vector<int32_t> out;
  if (add_bos && spec_.add_bos && bos_ >= 0) out.push_back(bos_);
  std::unordered_map<std::string, std::vector<int32_t>> cache;
  for (const TextSegment& s : raw_added_.split(text)) {
    if (s.id >= 0) out.push_back(s.id); else encode_plain(s.text, s.offset == 0, out, cache);
  }
  return out;
}

std::string HfBpeTokenizer::decode_token(int32_t prev, int32_t id) const {
  if (id < 0 || id >= vocab_size()) return "";
  if (spec_.token_types[id] == static_cast<int32_t>(TokenType::kControl)) return "";
  const std::string& t = spec_.tokens[id];
  if (decode_.byte_level) return byte_level_decode(t);
  if (decode_.byte_fallback) {
    if (const auto b = byte_token_value(t)) return std::string(1, static_cast<char>(*b));
  }
  std::string out;
  const std::string& sym = decode_.space_symbol;
  for (size_t i = 0; i < t.size();) {
    if (!sym.empty() && t.compare(i, sym.size(), sym) == 0) {
      out += ' ';
      i += sym.size();
    } else {
      out += t[i++];
    }
  }
  // The Strip decoder removes one leading space of the whole decoded text.
  if (prev < 0 && decode_.strip_leading_space && !out.empty() && out[0] == ' ') out.erase(0, 1);
  return out;
}

GgufVocab HfBpeTokenizer::gguf_vocab() const {
  GgufVocab v;
  v.model = decode_.byte_level ? "gpt2" : "llama";
  v.tokens = spec_.tokens;
  v.token_types = spec_.token_types;
  v.merges = spec_.merges;
  v.bos = spec_.bos;
  v.eos = spec_.eos;
  v.unk = spec_.unk;
  v.add_bos = spec_.add_bos;
  v.strip_space_after_bos = false;  // the Strip decoder acts at the start of the text only
  Json pipeline = spec_.pipeline;
  Json added = Json::array();
  for (const AddedToken& t : spec_.added) {
    added.push_back({{"id", t.id}, {"content", t.content}, {"special", t.special}, {"single_word", t.single_word},
                     {"lstrip", t.lstrip}, {"rstrip", t.rstrip}, {"normalized", t.normalized}});
  }
  pipeline["added_tokens"] = added;
  v.pipeline = pipeline.dump();
  if (v.model == "gpt2") {
    v.pre = gguf_pre_for_pipeline(spec_.pipeline);
    for (const AddedToken& t : spec_.added) {
      if (!t.special && v.token_types[t.id] == static_cast<int32_t>(TokenType::kNormal)) {
        v.token_types[t.id] = static_cast<int32_t>(TokenType::kUserDefined);
      }
    }
    return v;
  }
  // llama.cpp orders SentencePiece-style merges by token score: score = -(rank of the
  // merge that makes the token), 0 for tokens no merge makes. lowbit itself reads the
  // merges back and uses their ranks.
  v.scores.assign(v.tokens.size(), 0.0f);
  for (size_t r = 0; r < spec_.merges.size(); ++r) {
    const auto& m = spec_.merges[r];
    const size_t sp = m.find(' ');
    const int32_t id = model_.id_of(m.substr(0, sp) + m.substr(sp + 1));
    if (id >= 0 && v.scores[id] == 0.0f) v.scores[id] = -static_cast<float>(r + 1);
  }
  for (size_t i = 0; i < v.tokens.size(); ++i) {
    if (v.token_types[i] == static_cast<int32_t>(TokenType::kNormal) && byte_token_value(v.tokens[i])) {
      v.token_types[i] = static_cast<int32_t>(TokenType::kByte);
    }
  }
  return v;
}

}  // namespace lowbit
