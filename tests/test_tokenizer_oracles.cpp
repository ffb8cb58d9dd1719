// Real tokenizers against the shared oracles (../shared/testdata/tokenizers, ids from the
// transformers.js port, cross-checked by a second implementation for Llama 3): every id of
// the Unicode stress text and of all of WikiText-2 test, for the Llama 3, Qwen 3 and a 32k
// SentencePiece-BPE tokenizer.json; the same through a GGUF file lowbit writes; and through
// the pipeline llama.cpp runs for a GGUF that only names its tokenizer.ggml.pre.
#include <gtest/gtest.h>

#include <sstream>

#include "io/gguf_llama.h"
#include "lowbit/gguf.h"
#include "lowbit/tokenizer.h"
#include "test_support.h"

namespace lowbit {
namespace {

std::vector<int32_t> read_ids(const std::string& path) {
  std::istringstream in(test::read_file(path));
  std::vector<int32_t> ids;
  for (int32_t id; in >> id;) ids.push_back(id);
  return ids;
}

struct Oracle {
  const char* folder;
  size_t stress_count, wikitext_count;  // from the README
};

constexpr Oracle kOracles[] = {{"llama3", 355, 289076}, {"qwen3", 371, 299078}, {"spm-bpe-32k", 451, 328879}};

std::string oracle_path(const Oracle& o, const std::string& file) { return test::shared_path(std::string("testdata/tokenizers/") + o.folder + "/" + file); }

// The ids of both oracle texts, checked one by one (the first difference is reported).
void expect_oracle_ids(const Tokenizer& t, const Oracle& o, const std::string& how) {
  const std::pair<const char*, const char*> texts[] = {{"testdata/tokenizers/unicode-stress.txt", "stress.ids.txt"},
                                                       {"data/wikitext-2-raw-test.txt", "wikitext.ids.txt"}};
  for (const auto& [text, ids_file] : texts) {
    const std::vector<int32_t> want = read_ids(oracle_path(o, ids_file));
    ASSERT_EQ(want.size(), std::string(ids_file) == "stress.ids.txt" ? o.stress_count : o.wikitext_count);
    const std::vector<int32_t> got = t.encode(test::read_file(test::shared_path(text)), false);
    size_t i = 0;
    while (i < want.size() && i < got.size() && want[i] == got[i]) ++i;
    EXPECT_EQ(i, want.size()) << o.folder << " " << how << " " << text << ": ids differ from position " << i;
    EXPECT_EQ(got.size(), want.size()) << o.folder << " " << how << " " << text;
  }
}

// The tokenizer read back from a GGUF file holding only its vocabulary keys.
std::shared_ptr<Tokenizer> through_gguf(const GgufVocab& v, const std::string& name) {
  const std::string path = test::temp_dir() + "/" + name + ".gguf";
  write_gguf(path, gguf_vocab_metadata(v, static_cast<int64_t>(v.tokens.size())), {});
  const GgufFile f(path);
  return tokenizer_from_gguf_vocab(read_gguf_vocab(f), path);
}

TEST(TokenizerOracles, TokenizerJsonGivesEveryReferenceId) {
  for (const Oracle& o : kOracles) {
    const auto t = load_hf_tokenizer(oracle_path(o, "tokenizer.json"));
    expect_oracle_ids(*t, o, "tokenizer.json");
  }
}

TEST(TokenizerOracles, LowbitGgufGivesEveryReferenceId) {
  for (const Oracle& o : kOracles) {
    const GgufVocab v = load_hf_tokenizer(oracle_path(o, "tokenizer.json"))->gguf_vocab();
    const auto g = through_gguf(v, o.folder);
    expect_oracle_ids(*g, o, "GGUF");
  }
}

// A GGUF as llama.cpp's converter writes it: tokenizer.ggml.pre names the splitting and
// no lowbit key is present. lowbit then runs what llama.cpp runs for that name (no
// normalizer: the oracle texts are already NFC, so Qwen 3's ids still match).
TEST(TokenizerOracles, GgufPreNameGivesTheReferenceIds) {
  const std::pair<const char*, const char*> cases[] = {{"llama3", "llama-bpe"}, {"qwen3", "qwen2"}};
  for (const auto& [folder, pre] : cases) {
    const Oracle& o = *std::find_if(std::begin(kOracles), std::end(kOracles), [&](const Oracle& x) { return std::string(x.folder) == folder; });
    GgufVocab v = load_hf_tokenizer(oracle_path(o, "tokenizer.json"))->gguf_vocab();
    EXPECT_EQ(v.model, "gpt2");
    EXPECT_EQ(v.pre, pre);
    v.pipeline.clear();
    const auto g = through_gguf(v, std::string(folder) + "-pre");
    expect_oracle_ids(*g, o, std::string("pre=") + pre);
  }
}

TEST(TokenizerOracles, ByteLevelDecodingGivesTheTextBack) {
  const std::string text = test::read_file(test::shared_path("testdata/tokenizers/unicode-stress.txt"));
  const auto t = load_hf_tokenizer(oracle_path(kOracles[0], "tokenizer.json"));
  EXPECT_EQ(t->decode(t->encode(text, false)), text.substr(0, text.find("<|begin_of_text|>")) +
                                                   text.substr(text.find("<|begin_of_text|>") + std::string("<|begin_of_text|>").size()));
}

}  // namespace
}  // namespace lowbit
