// Tokenizer construction from tokenizer.json and from GGUF vocabularies, and the shared
// decode loop. A tokenizer.json component lowbit does not implement is refused with an
// error naming the file and the JSON field, never approximated silently.
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

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

using nlohmann::json;

[[noreturn]] void unsupported(const std::string& path, const std::string& field, const json& value) {
  throw Error("unsupported tokenizer.json component at '" + field + "'",
              {.file = path, .value = value.dump().substr(0, 200)});
}

const json& require(const json& j, const char* key, const std::string& path, const std::string& field) {
  if (!j.is_object() || !j.contains(key)) throw Error("missing field '" + field + "." + key + "'", {.file = path});
  return j.at(key);
}

std::vector<json> flatten_sequence(const json& j, const char* list_key) {
  if (j.is_null()) return {};
  if (j.value("type", "") == "Sequence") return j.at(list_key).get<std::vector<json>>();
  return {j};
}

}  // namespace

std::shared_ptr<Tokenizer> load_hf_tokenizer(const std::string& path) {
  const MappedFile file(path);
  json root;
  try {
    root = json::parse(file.bytes().begin(), file.bytes().end());
  } catch (const json::exception& e) {
    throw Error(std::string("not valid JSON: ") + e.what(), {.file = path});
  }
  try {
    const json& model = require(root, "model", path, "");
    if (model.value("type", "") != "BPE") unsupported(path, "model.type", model.value("type", json()));
    for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
      if (model.contains(key) && !model[key].is_null() && model[key] != "") unsupported(path, std::string("model.") + key, model[key]);
    }
    BpeSpec spec;
    const json& vocab = require(model, "vocab", path, "model");
    if (!vocab.is_object()) throw Error("'model.vocab' is not an object", {.file = path});
    for (const auto& [token, id] : vocab.items()) {
      if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > (1 << 24)) {
        throw Error("token id out of range in 'model.vocab'", {.file = path, .value = token});
      }
      const auto i = id.get<size_t>();
      if (spec.tokens.size() <= i) spec.tokens.resize(i + 1);
      spec.tokens[i] = token;
    }
    for (const auto& m : require(model, "merges", path, "model")) {
      if (m.is_string()) spec.merges.push_back(m.get<std::string>());
      else if (m.is_array() && m.size() == 2) spec.merges.push_back(m[0].get<std::string>() + " " + m[1].get<std::string>());
      else throw Error("malformed entry in 'model.merges'", {.file = path, .value = m.dump()});
    }
    spec.byte_fallback = model.value("byte_fallback", false);
    spec.fuse_unk = model.value("fuse_unk", false);
    if (model.contains("unk_token") && model["unk_token"].is_string()) {
      const auto it = vocab.find(model["unk_token"].get<std::string>());
      if (it != vocab.end()) spec.unk = it->get<int32_t>();
    }
    for (const auto& t : root.value("added_tokens", json::array())) {
      const auto id = t.at("id").get<int32_t>();
      const auto content = t.at("content").get<std::string>();
      if (spec.tokens.size() <= static_cast<size_t>(id)) spec.tokens.resize(id + 1);
      spec.tokens[id] = content;
      spec.specials.emplace_back(content, id);
      if (t.value("special", false)) {
        spec.token_types.resize(spec.tokens.size(), static_cast<int32_t>(TokenType::kNormal));
        spec.token_types[id] = static_cast<int32_t>(TokenType::kControl);
      }
    }
    if (spec.unk >= 0) {
      spec.token_types.resize(spec.tokens.size(), static_cast<int32_t>(TokenType::kNormal));
      if (spec.token_types[spec.unk] == static_cast<int32_t>(TokenType::kControl)) {
        spec.token_types[spec.unk] = static_cast<int32_t>(TokenType::kUnknown);
      }
    }

    // normalizer + pre_tokenizer + decoder: the two shapes Llama-family models use.
    const auto normalizers = flatten_sequence(root.value("normalizer", json()), "normalizers");
    const auto pre = flatten_sequence(root.value("pre_tokenizer", json()), "pretokenizers");
    const auto decoders = flatten_sequence(root.value("decoder", json()), "decoders");
    bool prepend = false, replace_space = false;
    for (const auto& n : normalizers) {
      const auto type = n.value("type", "");
      if (type == "Prepend" && n.value("prepend", "") == "\xE2\x96\x81") prepend = true;
      else if (type == "Replace" && n.at("pattern").value("String", "") == " " && n.value("content", "") == "\xE2\x96\x81") replace_space = true;
      else unsupported(path, "normalizer", n);
    }
    bool byte_level = false;
    spec.prepend_space = prepend;
    for (const auto& p : pre) {
      const auto type = p.value("type", "");
      if (type == "Metaspace") {
        replace_space = true;
        const auto scheme = p.value("prepend_scheme", p.value("add_prefix_space", true) ? "always" : "never");
        spec.prepend_space = scheme != "never";
        spec.split_words = p.value("split", true);
      } else if (type == "ByteLevel" && p.value("use_regex", true)) {
        byte_level = true;
        spec.prepend_space = p.value("add_prefix_space", false);
      } else {
        unsupported(path, "pre_tokenizer", p);
      }
    }
    if (!byte_level && !replace_space) unsupported(path, "normalizer", root.value("normalizer", json()));
    spec.mode = byte_level ? BpeSpec::Mode::kByteLevel : BpeSpec::Mode::kMetaspace;
    spec.strip_leading_space = false;
    for (const auto& d : decoders) {
      const auto type = d.value("type", "");
      if (type == "Strip" && d.value("content", "") == " " && d.value("start", 0) == 1) spec.strip_leading_space = true;
      else if (type == "Metaspace") spec.strip_leading_space = d.value("prepend_scheme", "always") != "never";
      else if (type != "Replace" && type != "ByteFallback" && type != "Fuse" && type != "ByteLevel") unsupported(path, "decoder", d);
    }

    const json& post = root.value("post_processor", json());
    if (post.is_object() && post.value("type", "") == "TemplateProcessing") {
      const auto& single = post.at("single");
      if (!single.empty() && single[0].contains("SpecialToken")) {
        const auto name = single[0]["SpecialToken"].at("id").get<std::string>();
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
    for (size_t i = 0; i < spec.tokens.size(); ++i) {
      if (spec.tokens[i].empty()) spec.tokens[i] = "[PAD" + std::to_string(i) + "]";  // ids with no token
    }
    return std::make_shared<HfBpeTokenizer>(std::move(spec), "tokenizer.json BPE (" + path + ")");
  } catch (const json::exception& e) {
    throw Error(std::string("malformed tokenizer.json: ") + e.what(), {.file = path});
  }
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
    return std::make_shared<HfBpeTokenizer>(std::move(spec), "GGUF gpt2 vocabulary (" + source + ")");
  }
  throw Error("unsupported tokenizer.ggml.model", {.file = source, .value = vocab.model});
}

}  // namespace lowbit
