// Bad input never crashes and never loads: truncated prefixes of the shared model files
// (llama2.c tokenizer, config.json, tokenizer.json, safetensors, SentencePiece model, GGUF;
// the llama2.c checkpoint is in test_truncated_llama2c.cpp) and a set of malformed files
// give an Error that names the file (and the field, key or tensor where there is one).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "lowbit/error.h"
#include "lowbit/gguf.h"
#include "lowbit/model_io.h"
#include "test_support.h"
#include "truncation.h"

namespace lowbit {
namespace {

namespace fs = std::filesystem;

TEST(TruncatedFiles, Llama2cTokenizerEveryPrefix) {
  const auto dir = test::temp_dir();
  const std::string path = dir + "/tok512.bin";
  test::expect_prefixes_rejected(test::shared_path("models/stories260K/tok512.bin"), path, SIZE_MAX,
                           [&] { load_llama2c_tokenizer(path, 512); });
}

// A copy of a shared HF folder in a temp dir, so one of its files can be cut.
std::string copy_folder(const std::string& name) {
  const auto dir = test::temp_dir();
  for (const auto& e : fs::directory_iterator(test::shared_path("models/" + name))) {
    fs::copy_file(e.path(), dir + "/" + e.path().filename().string());
  }
  return dir;
}

TEST(TruncatedFiles, ConfigJsonEveryPrefix) {
  const auto dir = copy_folder("tinystories-656k");
  const std::string path = dir + "/config.json";
  test::expect_prefixes_rejected(test::shared_path("models/tinystories-656k/config.json"), path, SIZE_MAX,
                           [&] { load_hf_folder(dir); });
}

TEST(TruncatedFiles, TokenizerJson) {
  const auto dir = copy_folder("tinystories-656k");
  const std::string path = dir + "/tokenizer.json";
  test::expect_prefixes_rejected(test::shared_path("models/tinystories-656k/tokenizer.json"), path, 8192,
                           [&] { load_hf_tokenizer(path); });
}

TEST(TruncatedFiles, Safetensors) {
  for (const char* name : {"tinystories-656k", "shakespeare-llama-4m"}) {
    const auto dir = copy_folder(name);
    const std::string path = dir + "/model.safetensors";
    test::expect_prefixes_rejected(test::shared_path(std::string("models/") + name + "/model.safetensors"), path, 16384,
                             [&] { load_hf_folder(dir); });
  }
}

TEST(TruncatedFiles, SentencePieceModel) {
  const auto dir = test::temp_dir();
  const std::string path = dir + "/tokenizer.model";
  const auto bytes = test::read_all(test::shared_path("models/shakespeare-llama-4m/tokenizer.model"));
  int accepted = 0;
  // protobuf parsing cost grows with the prefix: every 97th prefix, and the last 64.
  for (size_t n = 0; n < bytes.size(); ++n) {
    if (n % 97 != 0 && n + 64 < bytes.size()) continue;
    test::write_all(path, bytes, n);
    try {
      load_sentencepiece_tokenizer(path);
      ++accepted;  // a prefix can be a smaller valid protobuf; it must not crash
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
  }
  EXPECT_LT(accepted, 5);
}

TEST(TruncatedFiles, Gguf) {
  const auto dir = test::temp_dir();
  const Model m = load_llama2c(test::shared_path("models/stories260K/stories260K.bin"),
                               test::shared_path("models/stories260K/tok512.bin"));
  const std::string full = dir + "/full.gguf";
  save_gguf(m, full);
  const std::string path = dir + "/cut.gguf";
  const GgufFile f(full);
  const size_t data_start = static_cast<size_t>(f.tensors()[0].data.data() - f.map()->bytes().data());
  test::expect_prefixes_rejected(full, path, data_start + 64, [&] { load_gguf_model(path); });
}

// ---- malformed files ----

void expect_error(const std::function<void()>& load, const std::string& file, const std::string& needle) {
  try {
    load();
    ADD_FAILURE() << "accepted; expected an error containing '" << needle << "'";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(file), std::string::npos) << what;
    EXPECT_NE(what.find(needle), std::string::npos) << what;
  }
}

TEST(MalformedFiles, ConfigJson) {
  const auto dir = copy_folder("tinystories-656k");
  const std::string path = dir + "/config.json";
  const auto original = nlohmann::json::parse(test::read_all(path));
  auto with = [&](const std::function<void(nlohmann::json&)>& edit) {
    auto j = original;
    edit(j);
    std::ofstream(path, std::ios::trunc) << j.dump();
  };
  with([](auto& j) { j.erase("hidden_size"); });
  expect_error([&] { load_hf_folder(dir); }, path, "hidden_size");
  with([](auto& j) { j["num_attention_heads"] = "eight"; });
  expect_error([&] { load_hf_folder(dir); }, path, "num_attention_heads");
  with([](auto& j) { j["model_type"] = "gpt2"; });
  expect_error([&] { load_hf_folder(dir); }, path, "model_type");
  with([](auto& j) { j["num_key_value_heads"] = 3; });
  expect_error([&] { load_hf_folder(dir); }, path, "n_kv_heads");
  with([](auto& j) { j["rope_scaling"] = {{"type", "dynamic"}, {"factor", 2.0}}; });
  expect_error([&] { load_hf_folder(dir); }, path, "rope_scaling.type");
  with([](auto& j) { j["hidden_size"] = 256; });  // the tensors no longer fit
  expect_error([&] { load_hf_folder(dir); }, "model.safetensors", "unexpected shape");
}

TEST(MalformedFiles, MissingPieces) {
  const auto dir = copy_folder("tinystories-656k");
  fs::remove(dir + "/tokenizer.json");
  expect_error([&] { load_hf_folder(dir); }, dir, "missing tokenizer");
  fs::remove(dir + "/model.safetensors");
  expect_error([&] { load_hf_folder(dir); }, dir, "no model.safetensors");
  const auto bin_dir = test::temp_dir();
  expect_error([&] { load_model(bin_dir + "/nothing.bin"); }, bin_dir + "/nothing.bin", "no such file");
}

TEST(MalformedFiles, TokenizerJson) {
  const auto dir = copy_folder("tinystories-656k");
  const std::string path = dir + "/tokenizer.json";
  const auto original = nlohmann::json::parse(test::read_all(path));
  auto with = [&](const std::function<void(nlohmann::json&)>& edit) {
    auto j = original;
    edit(j);
    std::ofstream(path, std::ios::trunc) << j.dump();
  };
  with([](auto& j) { j["model"]["type"] = "WordPiece"; });
  expect_error([&] { load_hf_tokenizer(path); }, path, "model.type");
  with([](auto& j) { j["pre_tokenizer"] = {{"type", "UnicodeScripts"}}; });
  expect_error([&] { load_hf_tokenizer(path); }, path, "pre_tokenizer");
  with([](auto& j) { j["model"]["merges"][0] = 7; });
  expect_error([&] { load_hf_tokenizer(path); }, path, "merges");
  with([](auto& j) { j["model"].erase("vocab"); });
  expect_error([&] { load_hf_tokenizer(path); }, path, "vocab");
}

TEST(MalformedFiles, Llama2cHeader) {
  const auto dir = test::temp_dir();
  const std::string path = dir + "/bad.bin";
  auto bytes = test::read_all(test::shared_path("models/stories260K/stories260K.bin"));
  const int32_t bad_heads = 7;  // 64 is not a multiple of 2 x 7
  std::memcpy(bytes.data() + 12, &bad_heads, 4);
  test::write_all(path, bytes, bytes.size());
  expect_error([&] { load_llama2c(path, test::shared_path("models/stories260K/tok512.bin")); }, path, "n_heads");
  const int32_t negative = -5;
  std::memcpy(bytes.data() + 8, &negative, 4);
  test::write_all(path, bytes, bytes.size());
  expect_error([&] { load_llama2c(path, test::shared_path("models/stories260K/tok512.bin")); }, path, "n_layers");
}

TEST(MalformedFiles, Gguf) {
  const auto dir = test::temp_dir();
  const Model m = load_llama2c(test::shared_path("models/stories260K/stories260K.bin"),
                               test::shared_path("models/stories260K/tok512.bin"));
  const std::string good = dir + "/good.gguf";
  save_gguf(m, good);
  const auto bytes = test::read_all(good);
  const std::string path = dir + "/bad.gguf";
  auto patched = [&](size_t offset, const void* value, size_t n) {
    auto b = bytes;
    std::memcpy(b.data() + offset, value, n);
    test::write_all(path, b, b.size());
  };
  patched(0, "GGUX", 4);
  expect_error([&] { GgufFile f(path); }, path, "bad magic");
  const uint32_t v1 = 1, swapped = 0x03000000;
  patched(4, &v1, 4);
  expect_error([&] { GgufFile f(path); }, path, "version");
  patched(4, &swapped, 4);
  expect_error([&] { GgufFile f(path); }, path, "big-endian");
  const uint64_t huge = uint64_t{1} << 40;
  patched(8, &huge, 8);
  expect_error([&] { GgufFile f(path); }, path, "count out of range");
  // A model GGUF without a required key names the key.
  std::vector<GgufKeyValue> kv;
  const GgufFile f(good);
  for (const auto& e : f.metadata()) {
    if (e.key != "llama.embedding_length") kv.push_back(e);
  }
  std::vector<GgufTensorToWrite> tensors;
  for (const auto& t : f.tensors()) tensors.push_back({t.name, t.dims, t.type, t.data});
  write_gguf(path, kv, tensors);
  expect_error([&] { load_gguf_model(path); }, path, "llama.embedding_length");
  // Wrong shapes name the tensor.
  kv = f.metadata();
  for (auto& e : kv) {
    if (e.key == "llama.feed_forward_length") e.value = GgufValue::u32(128);
  }
  write_gguf(path, kv, tensors);
  expect_error([&] { load_gguf_model(path); }, path, "blk.0.ffn_gate.weight");
}

}  // namespace
}  // namespace lowbit
