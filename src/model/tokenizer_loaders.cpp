// Tokenizer construction from tokenizer.json and from GGUF vocabularies, and the shared
// decode loop. A tokenizer.json component lowbit does not implement is refused with an
// error naming the file and the JSON field, never approximated silently.
#include "core/json_fields.h"
#include "lowbit/error.h"
#include "lowbit/mapped_file.h"
#include "model/gguf_pre_tokenizers.h"
#include "model/tokenizer_hf_bpe.h"
#include "model/tokenizer_score_bpe.h"

namespace lowbit {

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string out;
  int32_t prev = -1;
  for (int32_t id : ids) {
    out += decode_token(prev, id);
    prev = id;
  }
  return out;
}

namespace {

[[noreturn]] void unsupported(const std::string& path, const std::string& field, const Json& value) {
  throw Error("unsupported tokenizer.json component at '" + field + "'", {.file = path, .value = json_excerpt(value)});
}

void set_type(BpeSpec& spec, int32_t id, TokenType type) {
  spec.token_types.resize(spec.tokens.size(), static_cast<int32_t>(TokenType::kNormal));
  spec.token_types[id] = static_cast<int32_t>(type);
}

void read_vocab(const JsonObject& model, BpeSpec& spec) {
  const JsonObject vocab = model.get_object("vocab");
  for (const auto& [token, id] : vocab.json().items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= kMaxVocab) {
      throw Error("token id out of range [0, " + std::to_string(kMaxVocab) + ") in 'model.vocab'",
                  {.file = vocab.file(), .value = token.substr(0, 80) + ": " + json_excerpt(id)});
    }
    const auto i = id.get<size_t>();
    if (spec.tokens.size() <= i) spec.tokens.resize(i + 1);
    if (!spec.tokens[i].empty()) {
      throw Error("two tokens share id " + std::to_string(i) + " in 'model.vocab'", {.file = vocab.file(), .value = token.substr(0, 80)});
    }
    spec.tokens[i] = token;
  }
}

void read_merges(const JsonObject& model, BpeSpec& spec) {
  const Json& merges = model.get_array("merges");
  spec.merges.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    const Json& m = merges[i];
    if (m.is_string()) {
      spec.merges.push_back(m.get<std::string>());
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      spec.merges.push_back(m[0].get<std::string>() + " " + m[1].get<std::string>());
    } else {
      throw Error("'model.merges[" + std::to_string(i) + "]' is not \"a b\" or [\"a\", \"b\"]",
                  {.file = model.file(), .value = json_excerpt(m)});
    }
  }
}

// Added tokens from a tokenizer.json "added_tokens" array (or the pipeline's copy in GGUF):
// each also becomes its id's vocabulary entry, a control token when special.
void read_added_tokens(const JsonObject& root, BpeSpec& spec) {
  if (!root.has("added_tokens")) return;
  const Json& added = root.get_array("added_tokens");
  for (size_t k = 0; k < added.size(); ++k) {
    const JsonObject t = root.element(added, "added_tokens", k);
    AddedToken a;
    a.id = static_cast<int32_t>(t.get_int("id", std::nullopt, 0, kMaxVocab - 1));
    a.content = t.get_string("content");
    a.special = t.get_bool("special", false);
    a.single_word = t.get_bool("single_word", false);
    a.lstrip = t.get_bool("lstrip", false);
    a.rstrip = t.get_bool("rstrip", false);
    a.normalized = t.get_bool("normalized", !a.special);
    if (spec.tokens.size() <= static_cast<size_t>(a.id)) spec.tokens.resize(a.id + 1);
    spec.tokens[a.id] = a.content;
    if (a.special) set_type(spec, a.id, TokenType::kControl);
    spec.added.push_back(std::move(a));
  }
}

}  // namespace

std::shared_ptr<Tokenizer> load_hf_tokenizer(const std::string& path) {
  const MappedFile file(path);
  const Json json = parse_json(std::string_view(reinterpret_cast<const char*>(file.bytes().data()), file.bytes().size()), path);
  const JsonObject root(json, path);
  const JsonObject model = root.get_object("model");
  if (model.get_string("type", "") != "BPE") unsupported(path, "model.type", model.find("type") ? *model.find("type") : Json());
  if (model.has("dropout") && model.get_number("dropout") != 0.0) unsupported(path, "model.dropout", *model.find("dropout"));
  BpeSpec spec;
  read_vocab(model, spec);
  read_merges(model, spec);
  if (model.has("unk_token")) {
    const std::string unk = model.get_string("unk_token");
    if (const auto it = model.get_object("vocab").json().find(unk); it != model.get_object("vocab").json().end()) {
      spec.unk = it->get<int32_t>();
    }
  }
  read_added_tokens(root, spec);
  if (spec.unk >= 0) {
    spec.token_types.resize(spec.tokens.size(), static_cast<int32_t>(TokenType::kNormal));
    if (spec.token_types[spec.unk] == static_cast<int32_t>(TokenType::kControl)) set_type(spec, spec.unk, TokenType::kUnknown);
  }
  spec.pipeline = pipeline_of_tokenizer_json(root);

  if (const auto post = root.find_object("post_processor"); post && post->get_string("type", "") == "TemplateProcessing") {
    const Json& single = post->get_array("single");
    if (!single.empty() && single[0].is_object() && single[0].contains("SpecialToken")) {
      const auto name = post->element(single, "single", 0).get_object("SpecialToken").get_string("id");
      for (const AddedToken& t : spec.added) {
        if (t.content == name) {
          spec.bos = t.id;
          spec.add_bos = true;
        }
      }
    }
  }
  // EOS: the conventional names, when present.
  for (const char* name : {"</s>", "<|endoftext|>", "<|end_story|>", "<|eot_id|>", "<|end_of_text|>", "<|im_end|>"}) {
    for (const AddedToken& t : spec.added) {
      if (spec.eos < 0 && t.content == name) spec.eos = t.id;
    }
  }
  validate_bpe_spec(spec, path);
  return std::make_shared<HfBpeTokenizer>(std::move(spec), "tokenizer.json BPE (" + path + ")", path);
}

std::shared_ptr<Tokenizer> tokenizer_from_gguf_vocab(const GgufVocab& vocab, const std::string& source) {
  // A "llama" vocabulary runs llama.cpp's score-ordered merges, unless lowbit wrote it from
  // a tokenizer.json (then the pipeline and merges it keeps give tokenizer.json's ids).
  if (vocab.model == "llama" && (vocab.pipeline.empty() || vocab.merges.empty())) {
    return std::make_shared<ScoreBpeTokenizer>(vocab, "GGUF llama vocabulary (" + source + ")");
  }
  if (vocab.model != "gpt2" && vocab.model != "llama") throw Error("unsupported tokenizer.ggml.model", {.file = source, .value = vocab.model});
  BpeSpec spec;
  spec.tokens = vocab.tokens;
  spec.token_types = vocab.token_types;
  spec.merges = vocab.merges;
  spec.bos = vocab.bos;
  spec.eos = vocab.eos;
  spec.unk = vocab.unk;
  spec.add_bos = vocab.add_bos;
  if (!vocab.pipeline.empty()) {
    // lowbit's own GGUF: the tokenizer.json pipeline it came from, added tokens included.
    spec.pipeline = parse_json(vocab.pipeline, source + " (lowbit.tokenizer.pipeline)");
    if (!spec.pipeline.is_object()) throw Error("'lowbit.tokenizer.pipeline' is not a JSON object", {.file = source});
    const JsonObject root(spec.pipeline, source);
    const std::vector<std::string> tokens = spec.tokens;
    read_added_tokens(root, spec);
    if (spec.tokens != tokens) throw Error("'lowbit.tokenizer.pipeline' added tokens differ from tokenizer.ggml.tokens", {.file = source});
  } else {
    // Another converter's GGUF: what llama.cpp runs for its tokenizer.ggml.pre; control and
    // user-defined tokens are matched in the text as llama.cpp does.
    spec.pipeline = pipeline_for_gguf_pre(vocab.pre, source);
    for (size_t i = 0; i < vocab.tokens.size(); ++i) {
      const int32_t type = i < vocab.token_types.size() ? vocab.token_types[i] : static_cast<int32_t>(TokenType::kNormal);
      if (type == static_cast<int32_t>(TokenType::kControl) || type == static_cast<int32_t>(TokenType::kUserDefined)) {
        spec.added.push_back({.content = vocab.tokens[i], .id = static_cast<int32_t>(i), .special = type == static_cast<int32_t>(TokenType::kControl)});
      }
    }
  }
  validate_bpe_spec(spec, source);
  const std::string kind = vocab.pipeline.empty() ? "GGUF gpt2 vocabulary, pre-tokenizer " + (vocab.pre.empty() ? "default" : vocab.pre)
                                                  : "GGUF " + vocab.model + " vocabulary with its tokenizer.json pipeline";
  return std::make_shared<HfBpeTokenizer>(std::move(spec), kind + " (" + source + ")", source);
}

}  // namespace lowbit
