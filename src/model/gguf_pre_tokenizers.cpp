// tokenizer.ggml.pre <-> tokenizer.json pipelines (see gguf_pre_tokenizers.h). Each row is a
// llama.cpp pre-tokenizer type that lowbit reproduces exactly: the regexes llama.cpp splits
// with, in order (each keeps matches and the text between them as pieces: a Split with
// the Isolated behaviour), then the byte mapping; and whether a word that is already a
// token skips the merges. The regexes are written as the models' tokenizer.json write
// them; llama.cpp spells `(?i:'s|...)` out by hand as `(?:'[sS]|...)`, the same language.
#include "model/gguf_pre_tokenizers.h"

#include <string_view>
#include <vector>

#include "lowbit/error.h"
#include "model/byte_level.h"

namespace lowbit {
namespace {

constexpr std::string_view kLlama3Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kQwen2Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
// llama.cpp's LLAMA_VOCAB_PRE_TYPE_DEFAULT, four splits in turn.
constexpr std::string_view kDefaultRegexes[] = {
    R"([\p{P}\$\+<=>\^~\|]+)",
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))",
    R"(\p{N}+)",
    R"([0-9][0-9][0-9])",
};

struct PreType {
  std::vector<std::string_view> names;  // the first is what lowbit writes
  std::vector<std::string_view> regexes;
  bool gpt2_regex = false;  // ByteLevel's own GPT-2 regex instead of Splits
  bool ignore_merges = false;
};

const std::vector<PreType>& pre_types() {
  static const std::vector<PreType> table = {
      {{"llama-bpe", "llama3", "llama-v3", "falcon3"}, {kLlama3Regex}, false, true},
      {{"qwen2", "deepseek-r1-qwen"}, {kQwen2Regex}, false, false},
      {{"gpt-2", "phi-2", "roberta-bpe"}, {}, true, false},
      {{"default"}, {std::begin(kDefaultRegexes), std::end(kDefaultRegexes)}, false, false},
  };
  return table;
}

Json split_isolated(std::string_view regex) {
  return {{"type", "Split"}, {"pattern", {{"Regex", std::string(regex)}}}, {"behavior", "Isolated"}, {"invert", false}};
}

Json byte_level(bool use_regex) { return {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", use_regex}}; }

// The pre_tokenizer components of a pipeline, Sequences flattened.
void flatten(const Json& c, std::vector<const Json*>& out) {
  if (!c.is_object()) return;
  if (c.value("type", "") == "Sequence" && c.contains("pretokenizers") && c["pretokenizers"].is_array()) {
    for (const Json& e : c["pretokenizers"]) flatten(e, out);
    return;
  }
  out.push_back(&c);
}

}  // namespace

std::string gguf_pre_for_pipeline(const Json& pipeline) {
  std::vector<const Json*> parts;
  if (pipeline.contains("pre_tokenizer")) flatten(pipeline["pre_tokenizer"], parts);
  // The shapes llama.cpp can mirror: Splits (Isolated, not inverted) then ByteLevel
  // without a prefix space; ByteLevel alone with its regex.
  std::vector<std::string> regexes;
  bool gpt2 = false, shape_ok = !parts.empty() && parts.back()->value("type", "") == "ByteLevel" &&
                                !parts.back()->value("add_prefix_space", true);
  if (shape_ok) gpt2 = parts.back()->value("use_regex", true);
  for (size_t i = 0; shape_ok && i + 1 < parts.size(); ++i) {
    const Json& p = *parts[i];
    const bool isolated = p.value("type", "") == "Split" && p.value("behavior", "") == "Isolated" && !p.value("invert", false) &&
                          p.contains("pattern") && p["pattern"].is_object() && p["pattern"].contains("Regex") && p["pattern"]["Regex"].is_string();
    if (!isolated) shape_ok = false; else regexes.push_back(p["pattern"]["Regex"].get<std::string>());
  }
  if (shape_ok) {
    for (const PreType& t : pre_types()) {
      if (t.gpt2_regex == gpt2 && std::vector<std::string>(t.regexes.begin(), t.regexes.end()) == regexes) return std::string(t.names[0]);
    }
  }
  warn("llama.cpp has no pre-tokenizer type that splits text as this tokenizer.json does; the GGUF names \"default\", so "
       "llama.cpp's token ids may differ from lowbit's (lowbit reads its own lowbit.tokenizer.pipeline key)");
  return "default";
}

Json pipeline_for_gguf_pre(const std::string& pre, const std::string& file) {
  const std::string name = pre.empty() ? "default" : pre;
  for (const PreType& t : pre_types()) {
    for (std::string_view n : t.names) {
      if (n != name) continue;
      Json parts = Json::array();
      for (std::string_view r : t.regexes) parts.push_back(split_isolated(r));
      parts.push_back(byte_level(t.gpt2_regex));
      return {{"normalizer", nullptr},
              {"pre_tokenizer", {{"type", "Sequence"}, {"pretokenizers", parts}}},
              {"decoder", {{"type", "ByteLevel"}}},
              {"model", {{"ignore_merges", t.ignore_merges}}}};
    }
  }
  throw Error("unsupported tokenizer.ggml.pre (lowbit splits text exactly as llama.cpp does for llama-bpe, qwen2, gpt-2 and default)",
              {.file = file, .value = pre});
}

}  // namespace lowbit
