// GGUF container and llama mapping: every value type round-trips, tensors keep their bytes
// at aligned offsets, a model re-reads to the same tensors and metadata, and stories260K's
// GGUF has the tokens and tensors llama.cpp's convert-llama2c-to-ggml writes.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

#include "lowbit/error.h"
#include "lowbit/gguf.h"
#include "lowbit/mapped_file.h"
#include "lowbit/model_io.h"
#include "test_support.h"

namespace lowbit {
namespace {

TEST(Gguf, EveryValueTypeRoundTrips) {
  const std::string path = test::temp_dir() + "/kv.gguf";
  std::vector<GgufKeyValue> kv;
  auto scalar = [](GgufType t, uint64_t u, int64_t i, double f) {
    GgufValue v;
    v.type = t;
    v.u = u;
    v.i = i;
    v.f = f;
    return v;
  };
  kv.push_back({"u8", scalar(GgufType::kU8, 200, 0, 0)});
  kv.push_back({"i8", scalar(GgufType::kI8, 0, -100, 0)});
  kv.push_back({"u16", scalar(GgufType::kU16, 60000, 0, 0)});
  kv.push_back({"i16", scalar(GgufType::kI16, 0, -30000, 0)});
  kv.push_back({"u32", GgufValue::u32(4000000000u)});
  kv.push_back({"i32", GgufValue::i32(-2000000000)});
  kv.push_back({"u64", scalar(GgufType::kU64, 1ull << 60, 0, 0)});
  kv.push_back({"i64", scalar(GgufType::kI64, 0, -(1ll << 60), 0)});
  kv.push_back({"f32", GgufValue::f32(1.5f)});
  kv.push_back({"f64", scalar(GgufType::kF64, 0, 0, 2.25)});
  kv.push_back({"bool", GgufValue::boolean(true)});
  kv.push_back({"str", GgufValue::string("h\xC3\xA9llo")});
  kv.push_back({"strs", GgufValue::strings({"a", "", "bc"})});
  kv.push_back({"f32s", GgufValue::f32s({1.0f, -2.0f})});
  const std::vector<uint8_t> q(144 * 2, 7);  // two q4_k blocks
  write_gguf(path, kv, {{"t", {512, 1}, 12, q}}, 64);
  const GgufFile f(path);
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), 64u);
  EXPECT_EQ(f.get("u8").as_int(), 200);
  EXPECT_EQ(f.get("i8").as_int(), -100);
  EXPECT_EQ(f.get("u16").as_int(), 60000);
  EXPECT_EQ(f.get("i16").as_int(), -30000);
  EXPECT_EQ(f.get("u32").as_int(), 4000000000ll);
  EXPECT_EQ(f.get("i32").as_int(), -2000000000);
  EXPECT_EQ(f.get("u64").as_int(), 1ll << 60);
  EXPECT_EQ(f.get("i64").as_int(), -(1ll << 60));
  EXPECT_EQ(f.get("f32").as_float(), 1.5);
  EXPECT_EQ(f.get("f64").as_float(), 2.25);
  EXPECT_EQ(f.get("bool").as_int(), 1);
  EXPECT_EQ(f.get("str").s, "h\xC3\xA9llo");
  ASSERT_EQ(f.get("strs").array.size(), 3u);
  EXPECT_EQ(f.get("strs").array[2].s, "bc");
  EXPECT_EQ(f.get("f32s").array[1].f, -2.0);
  ASSERT_EQ(f.tensors().size(), 1u);
  EXPECT_EQ(f.tensors()[0].dims, (std::vector<int64_t>{512, 1}));
  EXPECT_EQ(reinterpret_cast<uintptr_t>(f.tensors()[0].data.data()) % 64, 0u);
  EXPECT_TRUE(std::equal(q.begin(), q.end(), f.tensors()[0].data.begin()));
  EXPECT_THROW(f.get("missing"), Error);
}

TEST(Gguf, WriterRefusesInconsistentTensors) {
  const std::string dir = test::temp_dir();
  const std::vector<uint8_t> q(100);
  EXPECT_THROW(write_gguf(dir + "/a.gguf", {}, {{"t", {512}, 12, q}}), Error);   // wrong size
  EXPECT_THROW(write_gguf(dir + "/b.gguf", {}, {{"t", {4}, 999, q}}), Error);    // unknown type
  EXPECT_THROW(write_gguf(dir + "/c.gguf", {{"k", GgufValue::u32(1)}, {"k", GgufValue::u32(2)}}, {}), Error);
  EXPECT_TRUE(std::filesystem::is_empty(dir));
}

TEST(Gguf, ModelRereadsToTheSameTensorsAndMetadata) {
  const Model m = load_hf_folder(test::shared_path("models/shakespeare-llama-4m"));
  const std::string dir = test::temp_dir();
  const std::string path = dir + "/m.gguf";
  save_gguf(m, path);
  const GgufFile f(path);
  EXPECT_EQ(f.get("general.architecture").s, "llama");
  EXPECT_EQ(f.get("llama.embedding_length").as_int(), 256);
  EXPECT_EQ(f.get("llama.attention.head_count_kv").as_int(), 2);
  EXPECT_EQ(f.get("tokenizer.ggml.model").s, "llama");
  EXPECT_EQ(f.get("tokenizer.ggml.tokens").array.size(), 2048u);
  const Model g = load_gguf_model(path);
  ASSERT_EQ(g.weights().size(), m.weights().size());
  for (size_t i = 0; i < m.weights().size(); ++i) {
    const Weight& a = *m.weights()[i];
    const Weight& b = *g.weights()[i];
    EXPECT_EQ(a.name, b.name);
    EXPECT_EQ(a.rows, b.rows);
    EXPECT_EQ(a.cols, b.cols);
    EXPECT_EQ(a.format, b.format);
    const bool permuted = a.name.ends_with("attn_q.weight") || a.name.ends_with("attn_k.weight");
    if (!permuted) {
      EXPECT_TRUE(std::equal(a.data.begin(), a.data.end(), b.data.begin(), b.data.end())) << a.name;
      continue;
    }
    const auto order = rope_permutation(a.rows, a.name.ends_with("attn_q.weight") ? 4 : 2);
    const size_t rb = a.cols * 4;
    for (int64_t r = 0; r < a.rows; ++r) {
      ASSERT_EQ(std::memcmp(b.data.data() + r * rb, a.data.data() + order[r] * rb, rb), 0) << a.name << " row " << r;
    }
  }
  // Writing the re-read model again gives the same bytes (the permutation is not re-applied).
  const std::string again = dir + "/again.gguf";
  GgufWriteOptions o;
  o.name = f.get("general.name").s;
  save_gguf(g, again, o);
  std::ifstream a(path, std::ios::binary), b(again, std::ios::binary);
  EXPECT_TRUE(std::equal(std::istreambuf_iterator<char>(a), {}, std::istreambuf_iterator<char>(b), {}));
}

TEST(Gguf, Stories260KMatchesLlamaCppConverterLayout) {
  const std::string bin = test::shared_path("models/stories260K/stories260K.bin");
  const Model m = load_llama2c(bin, test::shared_path("models/stories260K/tok512.bin"));
  const std::string path = test::temp_dir() + "/stories260K-f32.gguf";
  save_gguf(m, path);
  const GgufFile f(path);
  // Tensors convert-llama2c-to-ggml writes: names, ggml dims, F32, output.weight included.
  std::map<std::string, std::vector<int64_t>> expected{
      {"token_embd.weight", {64, 512}}, {"output_norm.weight", {64}}, {"output.weight", {64, 512}}};
  for (int l = 0; l < 5; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    expected[p + "attn_q.weight"] = {64, 64};
    expected[p + "attn_k.weight"] = {64, 32};
    expected[p + "attn_v.weight"] = {64, 32};
    expected[p + "attn_output.weight"] = {64, 64};
    expected[p + "attn_norm.weight"] = {64};
    expected[p + "ffn_gate.weight"] = {64, 172};
    expected[p + "ffn_down.weight"] = {172, 64};
    expected[p + "ffn_up.weight"] = {64, 172};
    expected[p + "ffn_norm.weight"] = {64};
  }
  ASSERT_EQ(f.tensors().size(), expected.size());
  for (const auto& t : f.tensors()) {
    ASSERT_TRUE(expected.count(t.name)) << t.name;
    EXPECT_EQ(t.dims, expected[t.name]) << t.name;
    EXPECT_EQ(t.type, 0) << t.name;
  }
  // RoPE: llama2.c already pairs adjacent dimensions, so attn_q is the checkpoint's bytes.
  const MappedFile raw(bin);
  const size_t wq0 = 28 + 4 * (512 * 64 + 5 * 64);
  EXPECT_EQ(std::memcmp(f.find_tensor("blk.0.attn_q.weight")->data.data(), raw.bytes().data() + wq0, 64 * 64 * 4), 0);
  // Tokens: <unk>, <s>, </s>, byte tokens, spaces as U+2581, llama2.c scores, types.
  const auto& tokens = f.get("tokenizer.ggml.tokens").array;
  const auto& types = f.get("tokenizer.ggml.token_type").array;
  const auto& scores = f.get("tokenizer.ggml.scores").array;
  ASSERT_EQ(tokens.size(), 512u);
  EXPECT_EQ(tokens[0].s, "<unk>");
  EXPECT_EQ(types[0].i, 2);
  EXPECT_EQ(tokens[1].s, "<s>");
  EXPECT_EQ(types[1].i, 3);
  EXPECT_EQ(tokens[2].s, "</s>");
  EXPECT_EQ(types[2].i, 3);
  EXPECT_EQ(tokens[3].s, "<0x00>");
  EXPECT_EQ(types[3].i, 6);
  EXPECT_EQ(tokens[258].s, "<0xFF>");
  EXPECT_EQ(tokens[259].s, "\xE2\x96\x81t");  // " t"
  EXPECT_EQ(types[259].i, 1);
  EXPECT_EQ(scores[260].f, -1.0);              // "he"
  EXPECT_EQ(f.get("tokenizer.ggml.model").s, "llama");
  EXPECT_EQ(f.get("tokenizer.ggml.bos_token_id").as_int(), 1);
  EXPECT_EQ(f.get("tokenizer.ggml.eos_token_id").as_int(), 2);
  EXPECT_EQ(f.get("tokenizer.ggml.unknown_token_id").as_int(), 0);
  EXPECT_EQ(f.get("llama.rope.dimension_count").as_int(), 8);
  EXPECT_EQ(f.get("general.file_type").as_int(), 0);
}

}  // namespace
}  // namespace lowbit
