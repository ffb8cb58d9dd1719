// Llama 3.x, Qwen 2.5 and Qwen 3 layouts against the references in
// ../shared/testdata/archs (a float32 PyTorch implementation of each architecture's Hugging
// Face conventions, checked against llama.cpp to 2e-5): logits after every prefix of 64
// tokens within 1e-4 x max |logit|, and llama.cpp-method perplexity (-c 64, 40 chunks) on
// the shared shakespeare-test ids within 1e-4 relative. Plus the config errors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <algorithm>
#include <fstream>
#include <functional>

#include "core/json_fields.h"
#include "lowbit/engine.h"
#include "lowbit/error.h"
#include "lowbit/model_io.h"
#include "lowbit/perplexity.h"
#include "lowbit/quantize.h"
#include "lowbit/safetensors.h"
#include "test_support.h"

namespace lowbit {
namespace {

constexpr const char* kArchs[] = {"llama3-style", "qwen2-style", "qwen3-style", "qwen3-hd96-tied"};

std::vector<int32_t> int_tensor(const SafetensorsFile& f, const std::string& name) {
  const TensorView* t = f.find(name);
  std::vector<int32_t> v(static_cast<size_t>(t->numel()));
  std::memcpy(v.data(), t->data.data(), 4 * v.size());
  return v;
}

// The architectures lowbit writes to GGUF so far (llama3-style's rope_freqs is not yet).
constexpr const char* kGgufArchs[] = {"qwen2-style", "qwen3-style", "qwen3-hd96-tied"};

// lowbit's own GGUF of an arch folder (16-bit matrices, f32 norms and biases, q/k rows in
// the architecture's GGUF order).
std::string gguf_of(const char* arch, const std::string& dir) {
  QuantizeOptions o;
  o.input = test::shared_path(std::string("testdata/archs/") + arch);
  o.output = dir + "/" + arch + ".gguf";
  o.recipe = "pure:bf16";
  quantize_model(o);
  return o.output;
}

TEST(Archs, LogitsMatchTheReference) {
  std::vector<std::pair<std::string, std::string>> models;  // (reference folder, model path)
  for (const char* arch : kArchs) models.emplace_back(arch, test::shared_path(std::string("testdata/archs/") + arch));
  const std::string tmp = test::temp_dir();  // (each call empties it)
  for (const char* arch : kGgufArchs) models.emplace_back(arch, gguf_of(arch, tmp));
  for (const auto& [arch, path] : models) {
    const std::string dir = test::shared_path("testdata/archs/" + arch);
    const Model m = load_model(path);
    const SafetensorsFile ref(dir + "/reference-logits.safetensors");
    const std::vector<int32_t> tokens = int_tensor(ref, "tokens");
    const TensorView* lt = ref.find("logits");
    std::vector<float> want(static_cast<size_t>(lt->numel()));
    std::memcpy(want.data(), lt->data.data(), 4 * want.size());
    std::vector<float> got(want.size());
    Engine(m, 64).forward(tokens, 0, got.data());
    float amax = 0, err = 0;
    for (size_t i = 0; i < want.size(); ++i) {
      amax = std::max(amax, std::fabs(want[i]));
      err = std::max(err, std::fabs(want[i] - got[i]));
    }
    EXPECT_LE(err, 1e-4f * amax) << path << ": max |logit| " << amax;
  }
}

TEST(Archs, PerplexityMatchesTheReference) {
  const SafetensorsFile ids(test::shared_path("testdata/tokens/shakespeare-llama-4m.shakespeare-test.safetensors"));
  const std::vector<int32_t> tokens = int_tensor(ids, ids.tensors().front().name);
  for (const char* arch : kArchs) {
    const std::string dir = test::shared_path(std::string("testdata/archs/") + arch);
    const SafetensorsFile ref(dir + "/reference-logits.safetensors");
    const double want = std::stod(ref.metadata().at("ppl_c64_40chunks"));
    const Model m = load_model(dir);
    PerplexityOptions p;
    p.n_ctx = 64;
    p.max_chunks = 40;
    const double got = compute_perplexity(m, tokens, p).ppl;
    EXPECT_NEAR(got, want, 1e-4 * want) << arch;
  }
}

// A copy of an arch folder with config.json edited and, optionally, one tensor's shape
// changed in the safetensors header (same byte count, so only the shape check sees it).
std::string edited_copy(const char* arch, const std::function<void(Json&)>& edit) {
  const std::string src = test::shared_path(std::string("testdata/archs/") + arch), dir = test::temp_dir() + "/" + arch;
  std::filesystem::create_directories(dir);
  for (const char* f : {"model.safetensors", "tokenizer.model"}) std::filesystem::copy_file(src + "/" + f, dir + "/" + f);
  Json config = read_json_file(src + "/config.json");
  edit(config);
  std::ofstream(dir + "/config.json") << config.dump();
  return dir;
}

// Rewrites one tensor's shape in a safetensors header (the same element count).
void reshape_tensor(const std::string& path, const std::string& name, const std::vector<int64_t>& shape) {
  std::string bytes = test::read_file(path);
  uint64_t n;
  std::memcpy(&n, bytes.data(), 8);
  Json header = Json::parse(bytes.substr(8, n));
  header[name]["shape"] = shape;
  std::string text = header.dump();
  text.resize((text.size() + 7) / 8 * 8, ' ');
  const uint64_t m = text.size();
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(&m), 8);
  out << text << bytes.substr(8 + n);
}

void expect_error_naming(const std::string& dir, const std::string& what) {
  try {
    load_model(dir);
    ADD_FAILURE() << "accepted; expected an error naming " << what;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
  }
}

TEST(Archs, BadConfigsNameTheKeyOrTensor) {
  expect_error_naming(edited_copy("llama3-style", [](Json& j) { j["rope_scaling"]["rope_type"] = "longrope"; }), "rope_scaling.rope_type");
  // head_dim 80 does not divide q_proj's 256 rows into the 4 heads.
  expect_error_naming(edited_copy("qwen3-style", [](Json& j) { j["head_dim"] = 80; }), "model.layers.0.self_attn.q_proj.weight");
  // A Qwen 2 bias stored with the right bytes but the wrong shape.
  const std::string bias = edited_copy("qwen2-style", [](Json&) {});
  reshape_tensor(bias + "/model.safetensors", "model.layers.1.self_attn.q_proj.bias", {2, 128});
  expect_error_naming(bias, "model.layers.1.self_attn.q_proj.bias");
  expect_error_naming(edited_copy("qwen2-style", [](Json& j) { j["model_type"] = "qwen2_moe"; }), "model_type");
}

// Greedy generation from lowbit's GGUF equals generation from the Hugging Face folder.
TEST(Archs, GreedyGenerationFromGgufMatchesTheFolder) {
  const std::string tmp = test::temp_dir();
  for (const char* arch : {"qwen2-style", "qwen3-style"}) {
    auto greedy = [](const Model& m) {
      std::vector<int32_t> tokens = m.tokenizer->encode("ROMEO:\nBut soft, what light", true);
      Engine e(m, 64);
      std::vector<float> logits(static_cast<size_t>(m.config.vocab_size));
      e.forward(tokens, 0, logits.data(), false);
      for (int i = 0; i < 24; ++i) {
        const int32_t next = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
        tokens.push_back(next);
        e.forward(std::span(&tokens.back(), 1), static_cast<int64_t>(tokens.size()) - 1, logits.data(), false);
      }
      return tokens;
    };
    const Model folder = load_model(test::shared_path(std::string("testdata/archs/") + arch)), gguf = load_model(gguf_of(arch, tmp));
    EXPECT_EQ(greedy(gguf), greedy(folder)) << arch;
  }
}

// Each architecture quantizes with q8_0 and q4_k_m (biases and q/k norms stay f32), and
// the KL-divergence from the 16-bit model grows as bits fall.
TEST(Archs, QuantizedKldGrowsAsBitsFall) {
  const SafetensorsFile ids(test::shared_path("testdata/tokens/shakespeare-llama-4m.shakespeare-test.safetensors"));
  const std::vector<int32_t> tokens = int_tensor(ids, ids.tensors().front().name);
  const std::string tmp = test::temp_dir();
  for (const char* arch : {"qwen2-style", "qwen3-style", "qwen3-hd96-tied"}) {
    const std::string base = test::shared_path(std::string("testdata/archs/") + arch);
    PerplexityOptions p;
    p.n_ctx = 64;
    p.max_chunks = 20;
    p.save_logits_path = tmp + "/" + arch + ".logits";
    compute_perplexity(load_model(base), tokens, p);
    p.save_logits_path.clear();
    p.kld_base_path = tmp + "/" + arch + ".logits";
    double previous = 0;
    for (const char* recipe : {"q8_0", "q4_k_m"}) {
      QuantizeOptions o;
      o.input = base;
      o.output = tmp + "/" + arch + "-" + recipe + ".gguf";
      o.recipe = recipe;
      quantize_model(o);
      const Model q = load_model(o.output);
      EXPECT_EQ(q.layers[0].attn_q_norm.format == nullptr, std::string(arch) == "qwen2-style");
      if (q.layers[0].attn_q_bias.format) {
        EXPECT_EQ(q.layers[0].attn_q_bias.format->name, std::string_view("f32"));
      }
      const double kld = compute_perplexity(q, tokens, p).kld->mean;
      EXPECT_GT(kld, previous) << arch << " " << recipe;
      previous = kld;
    }
  }
}

// GGUF writing does not describe RoPE scaling yet: refused rather than written wrongly.
TEST(Archs, WritersRefuseWhatTheyCannotDescribeYet) {
  for (const char* arch : {"llama3-style"}) {
    QuantizeOptions o;
    o.input = test::shared_path(std::string("testdata/archs/") + arch);
    o.output = test::temp_dir() + "/" + arch + ".gguf";
    o.recipe = "q8_0";
    EXPECT_THROW(quantize_model(o), Error) << arch;
    EXPECT_FALSE(std::filesystem::exists(o.output)) << arch;
  }
}

}  // namespace
}  // namespace lowbit
