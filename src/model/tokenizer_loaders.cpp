// Tokenizer construction from tokenizer.json and from GGUF vocabularies, and the shared
// decode loop. A tokenizer.json component lowbit does not implement is refused with an
// error naming the file and the JSON field, never approximated silently.
#include "core/json_fields.h"
#include "lowbit/error.h"
#include "lowbit/mapped_file.h"
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

// The objects of a component that may be a "Sequence" of them (key `list_key`).
std::vector<JsonObject> flatten_sequence(const JsonObject& root, const char* key, const char* list_key) {
  const auto component = root.find_object(key);
  if (!component) return {};
  if (component->get_string("type", "") != "Sequence") return {*component};
  const Json& list = component->get_array(list_key);
  std::vector<JsonObject> out;
  for (size_t i = 0; i < list.size(); ++i) out.push_back(component->element(list, list_key, i));
  return out;
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

void read_added_tokens(const JsonObject& root, BpeSpec& spec) {
  if (!root.has("added_tokens")) return;
  const Json& added = root.get_array("added_tokens");
  for (size_t k = 0; k < added.size(); ++k) {
    const JsonObject t = root.element(added, "added_tokens", k);
    const auto id = static_cast<int32_t>(t.get_int("id", std::nullopt, 0, kMaxVocab - 1));
    const auto content = t.get_string("content");
    if (spec.tokens.size() <= static_cast<size_t>(id)) spec.tokens.resize(id + 1);
    spec.tokens[id] = content;
    spec.specials.emplace_back(content, id);
    if (t.get_bool("special", false)) set_type(spec, id, TokenType::kControl);
  }
}

}  // namespace

std::shared_ptr<Tokenizer> load_hf_tokenizer(const std::string& path) {
  const MappedFile file(path);
  const Json json = parse_json(std::string_view(reinterpret_cast<const char*>(file.bytes().data()), file.bytes().size()), path);
  const JsonObject root(json, path);
  const JsonObject model = root.get_object("model");
  if (model.get_string("type", "") != "BPE") unsupported(path, "model.type", model.find("type") ? *model.find("type") : Json());
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (model.has(key) && model.get_string(key) != "") unsupported(path, std::string("model.") + key, *model.find(key));
  }
  BpeSpec spec;
  read_vocab(model, spec);
  read_merges(model, spec);
  spec.byte_fallback = model.get_bool("byte_fallback", false);
  spec.fuse_unk = model.get_bool("fuse_unk", false);
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

  // normalizer + pre_tokenizer + decoder: the two shapes Llama-family models use.
  bool prepend = false, replace_space = false;
  for (const auto& n : flatten_sequence(root, "normalizer", "normalizers")) {
    const auto type = n.get_string("type", "");
    if (type == "Prepend" && n.get_string("prepend", "") == "\xE2\x96\x81") prepend = true;
    else if (type == "Replace" && n.get_object("pattern").get_string("String", "") == " " &&
             n.get_string("content", "") == "\xE2\x96\x81") replace_space = true;
    else unsupported(path, n.where(), n.json());
  }
  bool byte_level = false;
  spec.prepend_space = prepend;
  for (const auto& p : flatten_sequence(root, "pre_tokenizer", "pretokenizers")) {
    const auto type = p.get_string("type", "");
    if (type == "Metaspace") {
      replace_space = true;
      const auto scheme = p.get_string("prepend_scheme", p.get_bool("add_prefix_space", true) ? "always" : "never");
      spec.prepend_space = scheme != "never";
      spec.split_words = p.get_bool("split", true);
    } else if (type == "ByteLevel" && p.get_bool("use_regex", true)) {
      byte_level = true;
      spec.prepend_space = p.get_bool("add_prefix_space", false);
    } else {
      unsupported(path, p.where(), p.json());
    }
  }
  if (!byte_level && !replace_space) unsupported(path, "normalizer", root.find("normalizer") ? *root.find("normalizer") : Json());
  spec.mode = byte_level ? BpeSpec::Mode::kByteLevel : BpeSpec::Mode::kMetaspace;
  spec.strip_leading_space = false;
  for (const auto& d : flatten_sequence(root, "decoder", "decoders")) {
    const auto type = d.get_string("type", "");
    if (type == "Strip" && d.get_string("content", "") == " " && d.get_int("start", 0) == 1) spec.strip_leading_space = true;
    else if (type == "Metaspace") spec.strip_leading_space = d.get_string("prepend_scheme", "always") != "never";
    else if (type != "Replace" && type != "ByteFallback" && type != "Fuse" && type != "ByteLevel") unsupported(path, d.where(), d.json());
  }

  if (const auto post = root.find_object("post_processor"); post && post->get_string("type", "") == "TemplateProcessing") {
    const Json& single = post->get_array("single");
    if (!single.empty() && single[0].is_object() && single[0].contains("SpecialToken")) {
      const auto name = post->element(single, "single", 0).get_object("SpecialToken").get_string("id");
      for (const auto& [content, id] : spec.specials) {
        if (content == name) {
          spec.bos = id;
          spec.add_bos = true;
        }
      }
    }
  }
  // EOS: the conventional names, when present.
  for (const auto& [content, id] : spec.specials) {
    if (content == "</s>" || content == "<|endoftext|>" || content == "<|end_story|>" || content == "<|eot_id|>") {
      spec.eos = id;
      break;
    }
  }
  validate_bpe_spec(spec, path);
  return std::make_shared<HfBpeTokenizer>(std::move(spec), "tokenizer.json BPE (" + path + ")");
}

std::shared_ptr<Tokenizer> tokenizer_from_gguf_vocab(const GgufVocab& vocab, const std::string& source) {
  if (vocab.model == "llama") return std::make_shared<ScoreBpeTokenizer>(vocab, "GGUF llama vocabulary (" + source + ")");
  if (vocab.model == "gpt2") {
    BpeSpec spec;
    spec.mode = BpeSpec::Mode::kByteLevel;
    spec.tokens = vocab.tokens;
    spec.token_types = vocab.token_types;
    spec.merges = vocab.merges;
    spec.prepend_space = false;
    spec.bos = vocab.bos;
    spec.eos = vocab.eos;
    spec.unk = vocab.unk;
    spec.add_bos = vocab.add_bos;
    for (size_t i = 0; i < vocab.tokens.size(); ++i) {
      if (i < vocab.token_types.size() && (vocab.token_types[i] == static_cast<int32_t>(TokenType::kControl) ||
                                           vocab.token_types[i] == static_cast<int32_t>(TokenType::kUserDefined))) {
        spec.specials.emplace_back(vocab.tokens[i], static_cast<int32_t>(i));
      }
    }
    validate_bpe_spec(spec, source);
    return std::make_shared<HfBpeTokenizer>(std::move(spec), "GGUF gpt2 vocabulary (" + source + ")");
  }
  throw Error("unsupported tokenizer.ggml.model", {.file = source, .value = vocab.model});
}

}  // namespace lowbit
