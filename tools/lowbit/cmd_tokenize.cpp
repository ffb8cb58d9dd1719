// `lowbit tokenize MODEL|tokenizer.json|tokenizer.model -f TEXT [--ids | --json] [--bos]`:
// the token ids of a text as the model's tokenizer gives them. Default output: one token per
// line, "id<TAB>piece" (the piece's bytes as the decoder gives them, escaped); --ids: the ids
// on one line, space-separated (the shared oracles' format); --json: ids, pieces, count and
// speed.
#include <fmt/format.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "lowbit/atomic_file.h"
#include "lowbit/model_io.h"
#include "lowbit/output_guard.h"
#include "lowbit/tokenizer.h"

namespace lowbit::cli {
namespace {

// The tokenizer of `path`: a tokenizer.json or SentencePiece .model file itself, else the
// tokenizer of the model (folder, GGUF or llama2.c checkpoint with --tokenizer).
std::shared_ptr<Tokenizer> open_tokenizer(const std::string& path, const std::string& tokenizer) {
  if (path.ends_with(".json")) return load_hf_tokenizer(path);
  if (path.ends_with(".model")) return load_sentencepiece_tokenizer(path);
  return load_model(path, {.tokenizer_path = tokenizer}).tokenizer;
}

// Control characters and backslashes escaped, so every piece stays on its line.
std::string escaped(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (c < 0x20 || c == 0x7F) out += fmt::format("\\x{:02x}", c);
    else out += static_cast<char>(c);
  }
  return out;
}

}  // namespace

Runner register_tokenize(CLI::App& app) {
  auto* sub = app.add_subcommand("tokenize", "print the token ids of a text (tokenizer.json, .model, or a model's own tokenizer)");
  struct Options {
    std::string model, tokenizer, text_file, text, out;
    bool ids = false, json = false, bos = false;
  };
  auto o = std::make_shared<Options>();
  sub->add_option("model", o->model, "tokenizer.json, SentencePiece .model, HF folder, .gguf, or llama2.c checkpoint")->required();
  auto* file = sub->add_option("-f,--file", o->text_file, "the text to tokenize (raw bytes)");
  sub->add_option("-p,--prompt", o->text, "the text, given inline")->excludes(file);
  sub->add_option("--tokenizer", o->tokenizer, "tokenizer .bin for llama2.c checkpoints");
  sub->add_flag("--bos", o->bos, "start with the BOS token, when the tokenizer adds one");
  auto* ids = sub->add_flag("--ids", o->ids, "only the ids, space-separated on one line");
  sub->add_flag("--json", o->json, "ids, pieces, count and speed as JSON")->excludes(ids);
  sub->add_option("-o,--output", o->out, "write the result to this file instead of stdout");
  return [o]() {
    const auto tok = open_tokenizer(o->model, o->tokenizer);
    const std::string text = o->text_file.empty() ? o->text : read_text_file(o->text_file);
    const auto t0 = std::chrono::steady_clock::now();
    const std::vector<int32_t> tokens = tok->encode(text, o->bos);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::string result;
    if (o->json) {
      nlohmann::ordered_json j;
      j["tokenizer"] = tok->kind();
      j["bytes"] = text.size();
      j["count"] = tokens.size();
      j["seconds"] = seconds;
      j["ids"] = tokens;
      nlohmann::ordered_json pieces = nlohmann::ordered_json::array();
      int32_t prev = -1;
      for (int32_t id : tokens) {
        pieces.push_back(tok->decode_token(prev, id));
        prev = id;
      }
      j["pieces"] = pieces;
      result = j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    } else if (o->ids) {
      for (size_t i = 0; i < tokens.size(); ++i) result += (i ? " " : "") + std::to_string(tokens[i]);
      result += "\n";
    } else {
      int32_t prev = -1;
      for (int32_t id : tokens) {
        result += fmt::format("{}\t{}\n", id, escaped(tok->decode_token(prev, id)));
        prev = id;
      }
    }
    if (o->out.empty()) {
      fmt::print("{}", result);
    } else {
      refuse_overwriting_inputs(o->out, {o->model, o->text_file, o->tokenizer});
      AtomicFile f(o->out);
      f.write(result.data(), result.size());
      f.commit();
    }
    if (!o->json) fmt::print(stderr, "{} tokens from {} bytes in {:.3f} s\n", tokens.size(), text.size(), seconds);
    return 0;
  };
}

}  // namespace lowbit::cli
