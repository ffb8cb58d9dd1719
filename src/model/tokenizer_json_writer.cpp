// tokenizer.json from a GGUF vocabulary (see tokenizer_json_writer.h).
#include "model/tokenizer_json_writer.h"

#include <algorithm>
#include <unordered_map>

#include "model/gguf_pre_tokenizers.h"
#include "model/tokenizer_hf_bpe.h"

namespace lowbit {
namespace {

constexpr const char* kSpace = "\xE2\x96\x81";  // U+2581

bool is_special(const GgufVocab& v, size_t i) {
  return i < v.token_types.size() && (v.token_types[i] == static_cast<int32_t>(TokenType::kControl) ||
                                      v.token_types[i] == static_cast<int32_t>(TokenType::kUserDefined) ||
                                      v.token_types[i] == static_cast<int32_t>(TokenType::kUnknown));
}

// transformers' SentencePieceExtractor: every split of a piece into two pieces is a merge,
// all merges ordered by the joined piece's score, highest first (ties: by the parts' ids).
std::vector<std::string> merges_from_scores(const GgufVocab& v) {
  std::unordered_map<std::string, int32_t> ids;
  for (size_t i = 0; i < v.tokens.size(); ++i) ids.emplace(v.tokens[i], static_cast<int32_t>(i));
  struct M {
    int32_t left, right;
    float score;
  };
  std::vector<M> merges;
  for (size_t i = 0; i < v.tokens.size(); ++i) {
    if (is_special(v, i) || (i < v.token_types.size() && v.token_types[i] == static_cast<int32_t>(TokenType::kByte))) continue;
    const std::string& t = v.tokens[i];
    std::vector<M> local;
    for (size_t k = 1; k < t.size(); ++k) {
      if ((static_cast<unsigned char>(t[k]) & 0xC0) == 0x80) continue;  // split at character boundaries
      const auto l = ids.find(t.substr(0, k)), r = ids.find(t.substr(k));
      if (l != ids.end() && r != ids.end()) local.push_back({l->second, r->second, v.scores.empty() ? 0.0f : v.scores[i]});
    }
    std::sort(local.begin(), local.end(), [](const M& a, const M& b) { return a.left != b.left ? a.left < b.left : a.right < b.right; });
    merges.insert(merges.end(), local.begin(), local.end());
  }
  std::stable_sort(merges.begin(), merges.end(), [](const M& a, const M& b) { return a.score > b.score; });
  std::vector<std::string> out;
  out.reserve(merges.size());
  for (const M& m : merges) out.push_back(v.tokens[m.left] + " " + v.tokens[m.right]);
  return out;
}

Json added_token(int32_t id, const std::string& content, bool special, bool normalized = false) {
  return {{"id", id}, {"content", content}, {"single_word", false}, {"lstrip", false}, {"rstrip", false}, {"normalized", normalized}, {"special", special}};
}

}  // namespace

Json tokenizer_json_of(const GgufVocab& v, const std::string& source) {
  Json pipeline;
  std::vector<std::string> merges = v.merges;
  Json added = Json::array();
  if (!v.pipeline.empty()) {
    pipeline = parse_json(v.pipeline, source + " (lowbit.tokenizer.pipeline)");
    if (pipeline.contains("added_tokens")) added = pipeline["added_tokens"];
  } else if (v.model == "gpt2") {
    pipeline = pipeline_for_gguf_pre(v.pre, source);
  } else {  // SentencePiece-style: the form transformers' converter gives Llama tokenizers
    bool byte_fallback = false;
    for (size_t i = 0; i < v.tokens.size(); ++i) byte_fallback = byte_fallback || (i < v.token_types.size() && v.token_types[i] == static_cast<int32_t>(TokenType::kByte));
    pipeline = {{"normalizer", {{"type", "Sequence"}, {"normalizers", {{{"type", "Prepend"}, {"prepend", kSpace}},
                                                                       {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", kSpace}}}}}},
                {"pre_tokenizer", nullptr},
                {"decoder", {{"type", "Sequence"}, {"decoders", {{{"type", "Replace"}, {"pattern", {{"String", kSpace}}}, {"content", " "}},
                                                                 {{"type", "ByteFallback"}}, {{"type", "Fuse"}},
                                                                 {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}}}}},
                {"model", {{"byte_fallback", byte_fallback}, {"fuse_unk", true}, {"ignore_merges", false}}}};
    if (merges.empty()) merges = merges_from_scores(v);
  }
  if (added.empty()) {
    for (size_t i = 0; i < v.tokens.size(); ++i) {
      if (is_special(v, i)) added.push_back(added_token(static_cast<int32_t>(i), v.tokens[i], v.token_types[i] != static_cast<int32_t>(TokenType::kUserDefined)));
    }
  }
  Json vocab = Json::object();
  for (size_t i = 0; i < v.tokens.size(); ++i) vocab[v.tokens[i]] = i;
  const Json& m = pipeline.contains("model") ? pipeline["model"] : Json::object();
  Json model = {{"type", "BPE"},
                {"dropout", nullptr},
                {"unk_token", v.unk >= 0 ? Json(v.tokens[v.unk]) : Json(nullptr)},
                {"continuing_subword_prefix", m.value("continuing_subword_prefix", "").empty() ? Json(nullptr) : Json(m["continuing_subword_prefix"])},
                {"end_of_word_suffix", m.value("end_of_word_suffix", "").empty() ? Json(nullptr) : Json(m["end_of_word_suffix"])},
                {"fuse_unk", m.value("fuse_unk", false)},
                {"byte_fallback", m.value("byte_fallback", false)},
                {"ignore_merges", m.value("ignore_merges", false)},
                {"vocab", vocab},
                {"merges", merges}};
  Json post = nullptr;
  if (v.add_bos && v.bos >= 0) {
    const std::string bos = v.tokens[v.bos];
    post = {{"type", "TemplateProcessing"},
            {"single", {{{"SpecialToken", {{"id", bos}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
            {"pair", {{{"SpecialToken", {{"id", bos}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
                      {{"SpecialToken", {{"id", bos}, {"type_id", 1}}}}, {{"Sequence", {{"id", "B"}, {"type_id", 1}}}}}},
            {"special_tokens", {{bos, {{"id", bos}, {"ids", {v.bos}}, {"tokens", {bos}}}}}}};
  }
  return {{"version", "1.0"}, {"truncation", nullptr}, {"padding", nullptr}, {"added_tokens", added},
          {"normalizer", pipeline.value("normalizer", Json())}, {"pre_tokenizer", pipeline.value("pre_tokenizer", Json())},
          {"post_processor", post}, {"decoder", pipeline.value("decoder", Json())}, {"model", model}};
}

Json tokenizer_config_of(const GgufVocab& v) {
  Json c = {{"tokenizer_class", "PreTrainedTokenizerFast"}, {"add_bos_token", v.add_bos}, {"add_eos_token", false},
            {"clean_up_tokenization_spaces", false}};
  if (v.bos >= 0) c["bos_token"] = v.tokens[v.bos];
  if (v.eos >= 0) c["eos_token"] = v.tokens[v.eos];
  if (v.unk >= 0) c["unk_token"] = v.tokens[v.unk];
  return c;
}

Json generation_config_of(const GgufVocab& v) {
  Json c = {{"_from_model_config", true}};
  if (v.bos >= 0) c["bos_token_id"] = v.bos;
  if (v.eos >= 0) c["eos_token_id"] = v.eos;
  return c;
}

}  // namespace lowbit
