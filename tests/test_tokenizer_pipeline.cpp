// The tokenizer.json components one by one, on the examples Hugging Face tokenizers
// documents for them (tokenizers/src/tokenizer/normalizer.rs for the split behaviours; the
// pre-tokenizer and normalizer docs for Digits, Punctuation, Whitespace, Metaspace, NFKC):
// normalizers, pre-tokenizers with every behaviour and prepend scheme, added-token options,
// the BPE model's options, and a merge-less byte-level vocabulary in GGUF.
#include <gtest/gtest.h>

#include "io/gguf_llama.h"
#include "lowbit/error.h"
#include "lowbit/gguf.h"
#include "model/added_tokens.h"
#include "model/bpe_model.h"
#include "model/byte_level.h"
#include "model/pre_tokenizers.h"
#include "model/text_normalizers.h"
#include "model/tokenizer_hf_bpe.h"
#include "test_support.h"

namespace lowbit {
namespace {

std::vector<std::string> pre_tokenize(const Json& component, const std::string& text, bool at_start = true) {
  const Json root{{"pre_tokenizer", component}};
  const auto chain = build_pre_tokenizers(JsonObject(root, "test"));
  std::vector<PreToken> pieces{{text, at_start}};
  apply_pre_tokenizers(chain, pieces);
  std::vector<std::string> out;
  for (const auto& p : pieces) out.push_back(p.text);
  return out;
}

std::string normalize(const Json& component, std::string text) {
  const Json root{{"normalizer", component}};
  apply_normalizers(build_normalizers(JsonObject(root, "test")), text);
  return text;
}

using Strings = std::vector<std::string>;

TEST(TokenizerPipeline, SplitBehavioursFollowTokenizersDocExample) {
  auto split = [](const char* behavior) {
    return pre_tokenize({{"type", "Split"}, {"pattern", {{"String", "-"}}}, {"behavior", behavior}, {"invert", false}}, "the-final--countdown");
  };
  EXPECT_EQ(split("Removed"), (Strings{"the", "final", "countdown"}));
  EXPECT_EQ(split("Isolated"), (Strings{"the", "-", "final", "-", "-", "countdown"}));
  EXPECT_EQ(split("MergedWithPrevious"), (Strings{"the-", "final-", "-", "countdown"}));
  EXPECT_EQ(split("MergedWithNext"), (Strings{"the", "-final", "-", "-countdown"}));
  EXPECT_EQ(split("Contiguous"), (Strings{"the", "-", "final", "--", "countdown"}));
  // invert: the matches are kept, the rest is the delimiter.
  EXPECT_EQ(pre_tokenize({{"type", "Split"}, {"pattern", {{"Regex", "\\p{L}+"}}}, {"behavior", "Removed"}, {"invert", true}}, "ab, cd!"),
            (Strings{"ab", "cd"}));
  EXPECT_THROW(split("Sideways"), Error);
}

TEST(TokenizerPipeline, RegexSplitUsesUnicodePropertiesCaseFoldingAndLookahead) {
  const Json llama3 = {{"type", "Split"},
                       {"pattern", {{"Regex", "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}}},
                       {"behavior", "Isolated"}};
  EXPECT_EQ(pre_tokenize(llama3, "IT'S Ünïcode 1234567  ok\n\nπ"),
            (Strings{"IT", "'S", " Ünïcode", " ", "123", "456", "7", " ", " ok", "\n\n", "π"}));
  EXPECT_THROW(pre_tokenize({{"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}}, {"behavior", "Isolated"}}, "x"), Error);
}

TEST(TokenizerPipeline, DigitsPunctuationAndWhitespace) {
  EXPECT_EQ(pre_tokenize({{"type", "Digits"}, {"individual_digits", true}}, "Call 123 please"), (Strings{"Call ", "1", "2", "3", " please"}));
  EXPECT_EQ(pre_tokenize({{"type", "Digits"}, {"individual_digits", false}}, "Call 123 please"), (Strings{"Call ", "123", " please"}));
  EXPECT_EQ(pre_tokenize({{"type", "Punctuation"}}, "Hey friend!     How are you?!?"),
            (Strings{"Hey friend", "!", "     How are you", "?", "!", "?"}));
  EXPECT_EQ(pre_tokenize({{"type", "Whitespace"}}, "Hello! How are you?"), (Strings{"Hello", "!", "How", "are", "you", "?"}));
  EXPECT_EQ(pre_tokenize({{"type", "WhitespaceSplit"}}, "Hello!\tHow  are\u3000you?"), (Strings{"Hello!", "How", "are", "you?"}));
  EXPECT_EQ(pre_tokenize({{"type", "BertPreTokenizer"}}, "Hey, friend!"), (Strings{"Hey", ",", "friend", "!"}));
}

TEST(TokenizerPipeline, MetaspaceEveryPrependScheme) {
  const std::string s = "\xE2\x96\x81";
  auto meta = [](const char* scheme, bool split) { return Json{{"type", "Metaspace"}, {"replacement", "\xE2\x96\x81"}, {"prepend_scheme", scheme}, {"split", split}}; };
  EXPECT_EQ(pre_tokenize(meta("always", true), "Hey friend!"), (Strings{s + "Hey", s + "friend!"}));
  EXPECT_EQ(pre_tokenize(meta("never", true), "Hey friend!"), (Strings{"Hey", s + "friend!"}));
  EXPECT_EQ(pre_tokenize(meta("first", true), "Hey friend!", true), (Strings{s + "Hey", s + "friend!"}));
  EXPECT_EQ(pre_tokenize(meta("first", true), "Hey friend!", false), (Strings{"Hey", s + "friend!"}));
  EXPECT_EQ(pre_tokenize(meta("always", false), "Hey friend!"), (Strings{s + "Hey" + s + "friend!"}));
  // The legacy add_prefix_space flag stands for always / never.
  EXPECT_EQ(pre_tokenize({{"type", "Metaspace"}, {"add_prefix_space", false}}, "a b"), (Strings{"a", s + "b"}));
}

TEST(TokenizerPipeline, ByteLevelWithAndWithoutItsRegex) {
  const std::string g = "\xC4\xA0";  // the mapped space, "Ġ"
  EXPECT_EQ(pre_tokenize({{"type", "ByteLevel"}, {"add_prefix_space", true}, {"use_regex", true}}, "Hello my friend"),
            (Strings{g + "Hello", g + "my", g + "friend"}));
  EXPECT_EQ(pre_tokenize({{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}, "Hello my friend"),
            (Strings{"Hello" + g + "my" + g + "friend"}));
  EXPECT_EQ(byte_level_decode(byte_level_encode(std::string("\x00\xFF\x80 \n\xE2\x96\x81", 8))), std::string("\x00\xFF\x80 \n\xE2\x96\x81", 8));
}

TEST(TokenizerPipeline, Normalizers) {
  EXPECT_EQ(normalize({{"type", "NFC"}}, "e\xCC\x81"), "\xC3\xA9");                    // e + combining acute -> é
  EXPECT_EQ(normalize({{"type", "NFD"}}, "\xC3\xA9"), "e\xCC\x81");
  EXPECT_EQ(normalize({{"type", "NFKC"}}, "\xEF\xAC\x81 \xC2\xBD"), "fi 1\xE2\x81\x84" "2");  // ﬁ ½ -> fi 1⁄2
  EXPECT_EQ(normalize({{"type", "NFKD"}}, "\xEF\xAC\x81"), "fi");
  EXPECT_EQ(normalize({{"type", "Lowercase"}}, "\xC3\x86\xC3\x98\xC3\x85 ABC"), "\xC3\xA6\xC3\xB8\xC3\xA5 abc");
  EXPECT_EQ(normalize({{"type", "Sequence"}, {"normalizers", {{{"type", "NFD"}}, {{"type", "StripAccents"}}}}}, "caf\xC3\xA9"), "cafe");
  EXPECT_EQ(normalize({{"type", "Strip"}, {"strip_left", true}, {"strip_right", false}}, " \t hi  "), "hi  ");
  EXPECT_EQ(normalize({{"type", "Replace"}, {"pattern", {{"Regex", " {2,}"}}}, {"content", " "}}, "a   b  c d"), "a b c d");
  EXPECT_EQ(normalize({{"type", "Prepend"}, {"prepend", "_"}}, ""), "");  // only to non-empty text
  EXPECT_THROW(normalize({{"type", "Precompiled"}}, "x"), Error);
}

TEST(TokenizerPipeline, AddedTokenOptions) {
  auto segments = [](AddedToken t, const std::string& text) {
    const AddedTokenMatcher m({t}, {t.content});
    Strings out;
    for (const auto& s : m.split(text)) out.push_back((s.id >= 0 ? "#" : "") + std::string(s.text));
    return out;
  };
  AddedToken t{.content = "<x>", .id = 9};
  EXPECT_EQ(segments(t, "a <x> b<x>"), (Strings{"a ", "#<x>", " b", "#<x>"}));
  t.lstrip = true;
  EXPECT_EQ(segments(t, "a  <x> b"), (Strings{"a", "#  <x>", " b"}));
  t.lstrip = false, t.rstrip = true;
  EXPECT_EQ(segments(t, "a <x>  b"), (Strings{"a ", "#<x>  ", "b"}));
  AddedToken w{.content = "ok", .id = 3, .single_word = true};
  EXPECT_EQ(segments(w, "ok okay ok."), (Strings{"#ok", " okay ", "#ok", "."}));
  // Leftmost first, then longest.
  const AddedTokenMatcher m({{.content = "<a>", .id = 1}, {.content = "<a><b>", .id = 2}}, {"<a>", "<a><b>"});
  const auto s = m.split("x<a><b>");
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[1].id, 2);
}

TEST(TokenizerPipeline, BpeModelOptions) {
  const std::vector<std::string> tokens{"<unk>", "a", "b", "ab", "abab", "<0x63>", "c##", "##d"};
  const std::vector<std::string> merges{"a b", "ab ab"};
  std::vector<int32_t> ids;
  BpeModel plain(tokens, merges, {.unk = 0});
  plain.encode("ababx", ids, nullptr);
  EXPECT_EQ(ids, (std::vector<int32_t>{4, 0}));
  ids.clear();
  BpeModel fused(tokens, merges, {.unk = 0, .fuse_unk = true});
  fused.encode("xxa", ids, nullptr);
  EXPECT_EQ(ids, (std::vector<int32_t>{0, 1}));
  ids.clear();
  BpeModel fallback(tokens, merges, {.unk = 0, .byte_fallback = true});
  fallback.encode("cab", ids, nullptr);
  EXPECT_EQ(ids, (std::vector<int32_t>{5, 3}));
  // ignore_merges: a word that is itself a token is taken whole, whatever the merges say.
  ids.clear();
  BpeModel whole({"a", "b", "ab", "ba", "aba"}, {"a b", "b a"}, {.ignore_merges = true});
  whole.encode("aba", ids, nullptr);
  EXPECT_EQ(ids, (std::vector<int32_t>{4}));
  ids.clear();
  BpeModel ranks({"a", "b", "ab", "ba", "aba"}, {"a b", "b a"}, {});
  ranks.encode("aba", ids, nullptr);
  EXPECT_EQ(ids, (std::vector<int32_t>{2, 0}));  // "a b" ranks first; "ab a" has no merge
}

TEST(TokenizerPipeline, MergeLessByteLevelVocabularyStillWritesTheMergesKey) {
  BpeSpec spec;
  for (int b = 0; b < 256; ++b) spec.tokens.push_back(gpt2_byte_to_unicode(static_cast<uint8_t>(b)));
  spec.pipeline = {{"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}}, {"decoder", {{"type", "ByteLevel"}}}};
  const HfBpeTokenizer t(spec, "test", "test");
  const GgufVocab v = t.gguf_vocab();
  EXPECT_EQ(v.pre, "gpt-2");
  const std::string path = test::temp_dir() + "/nomerges.gguf";
  write_gguf(path, gguf_vocab_metadata(v, 256), {});
  const GgufFile f(path);
  ASSERT_NE(f.find("tokenizer.ggml.merges"), nullptr);  // llama.cpp refuses a gpt2 vocabulary without it
  EXPECT_TRUE(f.get("tokenizer.ggml.merges").array.empty());
  const auto back = tokenizer_from_gguf_vocab(read_gguf_vocab(f), path);
  EXPECT_EQ(back->encode("Hi w\xC3\xB6rld", false), (std::vector<int32_t>{'H', 'i', ' ', 'w', 0xC3, 0xB6, 'r', 'l', 'd'}));
}

TEST(TokenizerPipeline, UnknownGgufPreTokenizerIsRefused) {
  GgufVocab v{.model = "gpt2", .tokens = {"a"}, .pre = "no-such-pre"};
  try {
    tokenizer_from_gguf_vocab(v, "m.gguf");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.context().value, "no-such-pre");
    EXPECT_EQ(e.context().file, "m.gguf");
  }
}

}  // namespace
}  // namespace lowbit
