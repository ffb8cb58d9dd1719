// Every input the fuzzers found (fuzz/regressions/HARNESS/*), replayed through the same
// library call as its harness: each must load or give lowbit::Error, nothing else.
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <map>

#include "lowbit/error.h"
#include "lowbit/gguf.h"
#include "lowbit/imatrix.h"
#include "lowbit/model_io.h"
#include "lowbit/recipe.h"
#include "lowbit/safetensors.h"
#include "lowbit/tokenizer.h"
#include "test_support.h"

namespace lowbit {
namespace {

namespace fs = std::filesystem;

const std::map<std::string, std::function<void(const std::string&)>>& harnesses() {
  static const std::map<std::string, std::function<void(const std::string&)>> h{
      {"gguf", [](const std::string& p) { GgufFile f(p); }},
      {"safetensors", [](const std::string& p) { SafetensorsFile f(p); }},
      {"config_json", [](const std::string& p) { read_hf_config(p); }},
      {"tokenizer_json", [](const std::string& p) { load_hf_tokenizer(p)->encode("Once upon a time", true); }},
      {"tokenizer_model", [](const std::string& p) { load_sentencepiece_tokenizer(p)->encode("Once upon a time", true); }},
      {"llama2c", [](const std::string& p) { load_llama2c(p, test::shared_path("models/stories260K/tok512.bin")); }},
      {"llama2c_tokenizer", [](const std::string& p) { load_llama2c_tokenizer(p, 512)->encode("Once", true); }},
      {"imatrix", [](const std::string& p) { ImportanceMatrix::load(p); }},
      {"recipe", [](const std::string& p) { load_recipe(p); }},
      {"model", [](const std::string& p) { load_gguf_model(p); }},
  };
  return h;
}

TEST(FuzzRegressions, EveryFoundInputIsRefusedOrLoaded) {
  const fs::path root = fs::path(LOWBIT_SOURCE_DIR) / "fuzz" / "regressions";
  int inputs = 0;
  for (const auto& dir : fs::directory_iterator(root)) {
    const auto it = harnesses().find(dir.path().filename().string());
    ASSERT_NE(it, harnesses().end()) << "no harness for " << dir.path();
    for (const auto& input : fs::directory_iterator(dir)) {
      SCOPED_TRACE(input.path().string());
      ++inputs;
      try {
        it->second(input.path().string());
      } catch (const Error& e) {
        EXPECT_EQ(e.context().file, input.path().string()) << e.what();
      } catch (const std::exception& e) {
        ADD_FAILURE() << "escaped as " << e.what();
      }
    }
  }
  EXPECT_GE(inputs, 1);
}

}  // namespace
}  // namespace lowbit
