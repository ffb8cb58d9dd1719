// Tokenizers: encode/decode round trips on the shared texts, GPT-2 byte-level BPE (split
// pattern, merges, round trip of arbitrary bytes) on a synthetic tokenizer.json, GGUF
// vocabularies that re-create the same tokenizer, and the sampler.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "lowbit/error.h"
#include "lowbit/model_io.h"
#include "lowbit/sampler.h"
#include "model/byte_level.h"
#include "model/pre_tokenizers.h"
#include "model/tokenizer_hf_bpe.h"
#include "test_support.h"

namespace lowbit {
namespace {

std::string read_text(const std::string& relative) { return test::read_file(test::shared_path(relative)); }

std::string decode_after_bos(const Tokenizer& t, const std::vector<int32_t>& ids) {
  std::string out;
  for (size_t i = 1; i < ids.size(); ++i) out += t.decode_token(ids[i - 1], ids[i]);
  return out;
}

TEST(Tokenizers, Llama2cRoundTripsEveryText) {
  const auto t = load_llama2c_tokenizer(test::shared_path("models/stories260K/tok512.bin"), 512);
  for (const char* file : {"data/tinystories-valid-30k.txt", "data/tinystories-sample-4k.txt", "data/shakespeare-test.txt"}) {
    const auto text = read_text(file);
    const auto ids = t->encode(text, true);
    EXPECT_EQ(ids[0], 1);
    EXPECT_EQ(decode_after_bos(*t, ids), text) << file;  // byte fallback covers every byte
  }
}

TEST(Tokenizers, SentencePieceRoundTripsUpToItsNormalizer) {
  const auto t = load_sentencepiece_tokenizer(test::shared_path("models/shakespeare-llama-4m/tokenizer.model"));
  auto text = read_text("data/shakespeare-test.txt");
  const auto ids = t->encode(text, true);
  // The model's normalizer collapses runs of spaces (the reference tokens do too).
  std::string collapsed;
  for (char c : text) {
    if (!(c == ' ' && !collapsed.empty() && collapsed.back() == ' ')) collapsed += c;
  }
  EXPECT_EQ(decode_after_bos(*t, ids), collapsed);
}

TEST(Tokenizers, TokenizerJsonRoundTripsItsAlphabet) {
  const auto t = load_hf_tokenizer(test::shared_path("models/tinystories-656k/tokenizer.json"));
  // After BOS the decoded text keeps the space the normalizer prepended (the Strip decoder
  // only acts at the very start of a text).
  const std::string text = "Once upon a time, Lily saw a big red ball.\nShe said: \"Hi! It's 3 o'clock.\"";
  const auto ids = t->encode(text, true);
  EXPECT_EQ(ids[0], 1);
  for (int32_t id : ids) EXPECT_NE(id, 0) << "unexpected <unk>";
  EXPECT_EQ(decode_after_bos(*t, ids), " " + text);
  EXPECT_EQ(t->decode(std::vector<int32_t>(ids.begin() + 1, ids.end())), text);
  // It has no byte tokens: characters outside its vocabulary become one <unk> each run.
  EXPECT_EQ(t->encode("\xC3\xA9\xC3\xA9", false), (std::vector<int32_t>{t->encode(" ", false)[0], 0}));
  const auto sample = t->encode(read_text("data/tinystories-sample-4k.txt"), true);
  // The 4k sample has a few characters outside it (typographic quotes).
  EXPECT_LT(std::count(sample.begin(), sample.end(), 0), 8);
  // Special tokens in the text are matched whole.
  EXPECT_EQ(t->encode("<|end_story|>", false), (std::vector<int32_t>{2}));
}

// A GPT-2 style byte-level tokenizer.json: 256 byte symbols and three merges.
std::string write_byte_level_tokenizer(const std::string& dir) {
  nlohmann::json vocab = nlohmann::json::object();
  for (int b = 0; b < 256; ++b) vocab[gpt2_byte_to_unicode(static_cast<uint8_t>(b))] = b;
  vocab["he"] = 256;
  vocab["\xC4\xA0t"] = 257;          // "Ġt"
  vocab["\xC4\xA0the"] = 258;        // "Ġthe"
  vocab["<|endoftext|>"] = 259;
  nlohmann::json j{
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", {"h e", "\xC4\xA0 t", "\xC4\xA0t he"}}}},
      {"added_tokens", {{{"id", 259}, {"content", "<|endoftext|>"}, {"special", true}}}},
      {"normalizer", nullptr},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
      {"decoder", {{"type", "ByteLevel"}}},
      {"post_processor", nullptr}};
  const std::string path = dir + "/tokenizer.json";
  std::ofstream(path) << j.dump();
  return path;
}

TEST(Tokenizers, Gpt2SplitPattern) {
  // ByteLevel with its own regex: GPT-2's pattern, then the byte mapping ("Ġ" for a space).
  const nlohmann::json pipeline{{"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}}};
  const auto chain = build_pre_tokenizers(JsonObject(pipeline, "test"));
  std::vector<PreToken> pieces{{"Hello world's  test 123\n\nok!?", true}};
  apply_pre_tokenizers(chain, pieces);
  std::vector<std::string> got;
  for (const auto& p : pieces) got.push_back(byte_level_decode(p.text));
  const std::vector<std::string> expected{"Hello", " world", "'s", " ", " test", " 123", "\n", "\n", "ok", "!?"};
  EXPECT_EQ(got, expected);
}

TEST(Tokenizers, ByteLevelBpe) {
  const auto t = load_hf_tokenizer(write_byte_level_tokenizer(test::temp_dir()));
  const int32_t t_id = static_cast<int32_t>('t');
  EXPECT_EQ(t->encode(" the", false), (std::vector<int32_t>{258}));
  EXPECT_EQ(t->encode("the", false), (std::vector<int32_t>{t_id, 256}));
  EXPECT_EQ(t->encode("<|endoftext|> the", false), (std::vector<int32_t>{259, 258}));
  const std::string bytes = "caf\xC3\xA9 \xF0\x9F\x98\x80\r\n\t\x01 the end";
  EXPECT_EQ(t->decode(t->encode(bytes, false)), bytes);
  // The same tokenizer from its GGUF "gpt2" vocabulary.
  const GgufVocab v = t->gguf_vocab();
  EXPECT_EQ(v.model, "gpt2");
  EXPECT_EQ(v.merges.size(), 3u);
  const auto g = tokenizer_from_gguf_vocab(v, "test");
  for (const std::string& s : std::vector<std::string>{" the", "the", bytes, "<|endoftext|> the"}) {
    EXPECT_EQ(g->encode(s, false), t->encode(s, false)) << s;
  }
}

TEST(Tokenizers, GgufVocabularyRecreatesTheTokenizer) {
  const auto text = read_text("data/tinystories-sample-4k.txt");
  const auto llama2c = load_llama2c_tokenizer(test::shared_path("models/stories260K/tok512.bin"), 512);
  EXPECT_EQ(tokenizer_from_gguf_vocab(llama2c->gguf_vocab(), "t")->encode(text, true), llama2c->encode(text, true));
  const auto hf = load_hf_tokenizer(test::shared_path("models/tinystories-656k/tokenizer.json"));
  EXPECT_EQ(tokenizer_from_gguf_vocab(hf->gguf_vocab(), "t")->encode(text, true), hf->encode(text, true));
  EXPECT_THROW(tokenizer_from_gguf_vocab(GgufVocab{.model = "bert"}, "t"), Error);
}

TEST(Sampler, GreedyTopKAndSeeds) {
  std::vector<float> logits{0.1f, 2.0f, 1.9f, -1.0f, 0.5f};
  EXPECT_EQ(Sampler({.temperature = 0}).sample(logits.data(), 5), 1);
  Sampler top1({.temperature = 1.0f, .top_k = 1, .top_p = 1.0f, .seed = 3});
  for (int i = 0; i < 20; ++i) EXPECT_EQ(top1.sample(logits.data(), 5), 1);
  Sampler a({.temperature = 1.0f, .top_k = 0, .top_p = 1.0f, .seed = 7}), b({.temperature = 1.0f, .top_k = 0, .top_p = 1.0f, .seed = 7});
  std::vector<int32_t> sa, sb;
  std::vector<int> counts(5);
  for (int i = 0; i < 2000; ++i) {
    sa.push_back(a.sample(logits.data(), 5));
    sb.push_back(b.sample(logits.data(), 5));
    ++counts[sa.back()];
  }
  EXPECT_EQ(sa, sb);
  EXPECT_GT(counts[2], 500);   // p(2) ~ 0.38
  EXPECT_GT(counts[3], 0);     // every token can be drawn
  Sampler nucleus({.temperature = 1.0f, .top_k = 0, .top_p = 0.3f, .seed = 1});
  for (int i = 0; i < 50; ++i) EXPECT_EQ(nucleus.sample(logits.data(), 5), 1);  // p(1) ~ 0.42 > 0.3
}

}  // namespace
}  // namespace lowbit
