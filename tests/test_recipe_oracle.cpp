// The built-in recipes against llama.cpp's own choices (../shared/testdata/recipes): for
// every tensor of six shapes and 16 file types, lowbit's plan names the GGUF type
// llama-quantize chose. Also the model-trait rules (GQA, 70B, 8 experts, imatrix) one by one.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>
#include <set>

#include "lowbit/error.h"
#include "lowbit/recipe.h"
#include "test_support.h"

namespace lowbit {
namespace {

// "L22_h4_kv1" -> 22 layers, 4 heads, 1 KV head (the README's table, encoded in the name).
ModelTraits traits_of(const std::string& model) {
  long layers = 0, heads = 0, kv = 0;
  int used = 0;
  if (std::sscanf(model.c_str(), "L%ld_h%ld_kv%ld%n", &layers, &heads, &kv, &used) != 3 ||
      used != static_cast<int>(model.size())) {
    throw Error("unexpected oracle model name", {.value = model});
  }
  return {.n_layers = layers, .n_heads = heads, .n_kv_heads = kv};
}

int64_t layer_of(const std::string& tensor) {
  return tensor.starts_with("blk.") ? std::stoll(tensor.substr(4)) : -1;
}

TEST(RecipeOracle, EveryTensorEveryFileTypeEveryShapeMatchesLlamaCpp) {
  std::ifstream in(test::shared_path("testdata/recipes/llama.cpp-tensor-types.json"));
  const auto oracle = nlohmann::json::parse(in);
  int64_t checked = 0, differing = 0;
  std::set<std::string> file_types;
  for (const auto& [model, entry] : oracle.at("models").items()) {
    const ModelTraits traits = traits_of(model);
    for (const auto& [file_type, tensors] : entry.at("types").items()) {
      file_types.insert(file_type);
      const Recipe recipe = load_recipe(file_type);
      for (const auto& [tensor, type] : tensors.items()) {
        // Every model has dim 256, FFN 768: ffn_down rows hold 768 values, the others 256.
        const int64_t cols = tensor.find("ffn_down") != std::string::npos ? 768 : 256;
        const TensorChoice c = choose_format(recipe, tensor, layer_of(tensor), traits, cols);
        ++checked;
        if (c.format == nullptr || c.format->name != type.get<std::string>()) {
          if (++differing <= 20) {
            ADD_FAILURE() << model << " " << file_type << " " << tensor << ": llama.cpp " << type.get<std::string>()
                          << ", lowbit " << (c.format ? std::string(c.format->name) : "keep") << " (" << c.reason << ")";
          }
        }
      }
    }
  }
  EXPECT_EQ(differing, 0) << "of " << checked << " tensors";
  EXPECT_EQ(file_types.size(), 16u);
  EXPECT_GT(checked, 16 * 6 * 40);
}

// Rules the oracle's dense shapes do not reach, from llama_tensor_get_type.
TEST(RecipeOracle, ExpertAndImatrixRules) {
  const ModelTraits moe{.n_layers = 32, .n_heads = 32, .n_kv_heads = 8, .n_experts = 8};
  auto pick = [](const char* recipe, const char* tensor, int64_t layer, const ModelTraits& m) {
    return std::string(choose_format(load_recipe(recipe), tensor, layer, m, 4096).format->name);
  };
  for (const char* r : {"q2_k", "q3_k_m", "q4_k_m", "q5_k_m", "q6_k", "q4_0", "iq4_xs"}) {
    EXPECT_EQ(pick(r, "blk.3.attn_v.weight", 3, moe), "q8_0") << r;
    EXPECT_EQ(pick(r, "blk.3.attn_k.weight", 3, moe), "q8_0") << r;
  }
  EXPECT_EQ(pick("q4_k_m", "blk.3.attn_output.weight", 3, moe), "q5_k");
  EXPECT_EQ(pick("q3_k_l", "blk.3.attn_output.weight", 3, moe), "q3_k");  // not in llama.cpp's list
  EXPECT_EQ(pick("q5_k_m", "blk.3.attn_output.weight", 3, moe), "q5_k");
  // 80 layers with 8 experts is not llama.cpp's "70B".
  EXPECT_EQ(pick("q3_k_s", "blk.3.attn_v.weight", 3, {.n_layers = 80, .n_heads = 64, .n_kv_heads = 8}), "q5_k");
  EXPECT_EQ(pick("q3_k_s", "blk.3.attn_v.weight", 3, {.n_layers = 80, .n_heads = 64, .n_kv_heads = 64}), "q3_k");
  // The imatrix guards of q4_0/q5_0 and iq4_*.
  const ModelTraits plain{.n_layers = 32}, with_imatrix{.n_layers = 32, .has_imatrix = true};
  EXPECT_EQ(pick("q4_0", "blk.2.ffn_down.weight", 2, plain), "q4_0");
  EXPECT_EQ(pick("q4_0", "blk.2.ffn_down.weight", 2, with_imatrix), "q4_1");
  EXPECT_EQ(pick("q5_0", "blk.3.ffn_down.weight", 3, with_imatrix), "q5_1");
  EXPECT_EQ(pick("q5_0", "blk.4.ffn_down.weight", 4, with_imatrix), "q5_0");
  EXPECT_EQ(pick("iq4_nl", "blk.2.ffn_down.weight", 2, plain), "q5_k");
  EXPECT_EQ(pick("iq4_nl", "blk.2.ffn_down.weight", 2, with_imatrix), "iq4_nl");
}

TEST(RecipeOracle, UnknownConditionNamesTheRecipeFileAndRule) {
  const std::string dir = test::temp_dir();
  std::ofstream(dir + "/r.json") << R"({"base": "q4_0", "rules": [{"tensor": "attn_v", "format": "q8_0", "when": "gqa>=4,moe"}]})";
  try {
    load_recipe(dir + "/r.json");
    ADD_FAILURE() << "accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.context().file, dir + "/r.json");
    EXPECT_NE(std::string(e.what()).find("rules[0].when"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("'moe'"), std::string::npos) << e.what();
  }
  std::ofstream(dir + "/ok.json") << R"({"base": "q4_0", "rules": [{"tensor": "attn_v", "format": "q8_0", "when": "!imatrix,gqa>=4"}]})";
  const Recipe r = load_recipe(dir + "/ok.json");
  EXPECT_EQ(choose_format(r, "blk.0.attn_v.weight", 0, {.n_heads = 8, .n_kv_heads = 2}, 256).format->name, "q8_0");
  EXPECT_EQ(choose_format(r, "blk.0.attn_v.weight", 0, {.n_heads = 8, .n_kv_heads = 4}, 256).format->name, "q4_0");
  EXPECT_EQ(choose_format(r, "blk.0.attn_v.weight", 0, {.n_heads = 8, .n_kv_heads = 2, .has_imatrix = true}, 256).format->name, "q4_0");
}

}  // namespace
}  // namespace lowbit
