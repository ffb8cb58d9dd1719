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
#include <map>
#include <set>

#include "core/json_fields.h"
#include "lowbit/engine.h"
#include "lowbit/error.h"
#include "lowbit/gguf.h"
#include "lowbit/imatrix.h"
#include "lowbit/model_io.h"
#include "lowbit/perplexity.h"
#include "lowbit/quantize.h"
#include "lowbit/safetensors.h"
#include "model/layers.h"
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

// The shared shakespeare-test ids (BOS first) the reference perplexities are measured on.
std::vector<int32_t> shakespeare_test_ids() {
  const SafetensorsFile ids(test::shared_path("testdata/tokens/shakespeare-llama-4m.shakespeare-test.safetensors"));
  return int_tensor(ids, ids.tensors().front().name);
}

// Perplexity options (-c 64) scoring KL-divergence against `arch`'s 16-bit model, whose
// logits on `tokens` are saved under `dir` first.
PerplexityOptions kld_against_base(const std::string& arch, const std::vector<int32_t>& tokens, const std::string& dir, int64_t chunks) {
  PerplexityOptions p;
  p.n_ctx = 64;
  p.max_chunks = chunks;
  p.save_logits_path = dir + "/" + arch + ".logits";
  compute_perplexity(load_model(test::shared_path("testdata/archs/" + arch)), tokens, p);
  p.save_logits_path.clear();
  p.kld_base_path = dir + "/" + arch + ".logits";
  return p;
}

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
  for (const char* arch : kArchs) models.emplace_back(arch, gguf_of(arch, tmp));
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
  const std::vector<int32_t> tokens = shakespeare_test_ids();
  const std::string tmp = test::temp_dir();
  for (const char* arch : kArchs) {
    const std::string dir = test::shared_path(std::string("testdata/archs/") + arch);
    const SafetensorsFile ref(dir + "/reference-logits.safetensors");
    const double want = std::stod(ref.metadata().at("ppl_c64_40chunks"));
    for (const std::string& path : {dir, gguf_of(arch, tmp)}) {
      PerplexityOptions p;
      p.n_ctx = 64;
      p.max_chunks = 40;
      const double got = compute_perplexity(load_model(path), tokens, p).ppl;
      EXPECT_NEAR(got, want, 1e-4 * want) << path;
    }
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
  for (const char* arch : kArchs) {
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
  const std::vector<int32_t> tokens = shakespeare_test_ids();
  const std::string tmp = test::temp_dir();
  for (const char* arch : kArchs) {
    const std::string base = test::shared_path(std::string("testdata/archs/") + arch);
    const PerplexityOptions p = kld_against_base(arch, tokens, tmp, 20);
    double previous = 0;
    for (const char* recipe : {"q8_0", "q4_k_m"}) {
      QuantizeOptions o;
      o.input = base;
      o.output = tmp + "/" + arch + "-" + recipe + ".gguf";
      o.recipe = recipe;
      quantize_model(o);
      const Model q = load_model(o.output);
      EXPECT_EQ(q.layers[0].attn_q_norm.format == nullptr, !std::string(arch).starts_with("qwen3"));
      if (q.layers[0].attn_q_bias.format) {
        EXPECT_EQ(q.layers[0].attn_q_bias.format->name, std::string_view("f32"));
      }
      const double kld = compute_perplexity(q, tokens, p).kld->mean;
      EXPECT_GT(kld, previous) << arch << " " << recipe;
      previous = kld;
    }
  }
}

// Logits after every prefix of `tokens`, by prefill (BLAS attention) or one token at a
// time (the decode kernels).
std::vector<float> all_logits(const Model& m, std::span<const int32_t> tokens, bool one_at_a_time) {
  const int64_t vocab = m.config.vocab_size, n = static_cast<int64_t>(tokens.size());
  std::vector<float> out(static_cast<size_t>(n * vocab));
  Engine e(m, n);
  if (!one_at_a_time) {
    e.forward(tokens, 0, out.data());
  } else {
    for (int64_t t = 0; t < n; ++t) e.forward(tokens.subspan(t, 1), t, out.data() + t * vocab);
  }
  return out;
}

float max_abs(std::span<const float> x) {
  float m = 0;
  for (float v : x) m = std::max(m, std::fabs(v));
  return m;
}

float max_diff(std::span<const float> a, std::span<const float> b) {
  float m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

// Mistral's sliding window: a token sees itself and the W - 1 before it. Through L layers
// the last logits then depend on the L (W - 1) tokens before it alone, and RoPE is
// relative: they equal the logits of that suffix run from position 0. A window as long as
// the context is full attention (the same as model_type llama).
TEST(Archs, MistralSlidingWindow) {
  const SafetensorsFile ref(test::shared_path("testdata/archs/qwen3-style/reference-logits.safetensors"));
  const std::vector<int32_t> tokens = int_tensor(ref, "tokens");  // 64 ids, BOS first
  auto mistral = [](Json& j) {
    j["model_type"] = "mistral";
    j["architectures"] = Json::array({"MistralForCausalLM"});
    j.erase("rope_scaling");
  };
  const Model llama = load_model(edited_copy("llama3-style", [](Json& j) { j.erase("rope_scaling"); }));
  const Model full = load_model(edited_copy("llama3-style", [&](Json& j) { mistral(j); j["sliding_window"] = 4096; }));
  EXPECT_EQ(full.config.sliding_window, 0);
  EXPECT_EQ(all_logits(full, tokens, false), all_logits(llama, tokens, false));

  constexpr int64_t kWindow = 8;
  const Model swa = load_model(edited_copy("llama3-style", [&](Json& j) { mistral(j); j["sliding_window"] = kWindow; }));
  ASSERT_EQ(swa.config.sliding_window, kWindow);
  const int64_t vocab = swa.config.vocab_size, n = static_cast<int64_t>(tokens.size());
  const auto prefill = all_logits(swa, tokens, false), decode = all_logits(swa, tokens, true);
  const float scale = max_abs(prefill);
  EXPECT_LE(max_diff(prefill, decode), 1e-4f * scale) << "prefill and decode attention disagree";
  const int64_t reach = swa.config.n_layers * (kWindow - 1);  // 28 tokens before the last
  for (int64_t p : {reach, n - 1}) {
    const auto suffix = all_logits(swa, std::span(tokens).subspan(p - reach, reach + 1), false);
    const std::span<const float> got(prefill.data() + p * vocab, vocab), want(suffix.data() + reach * vocab, vocab);
    EXPECT_LE(max_diff(got, want), 1e-4f * scale) << "position " << p;
  }
  // The window matters: full attention gives other logits there.
  const auto unwindowed = all_logits(full, tokens, false);
  EXPECT_GT(max_diff(std::span(prefill).subspan((n - 1) * vocab), std::span(unwindowed).subspan((n - 1) * vocab)), 1e-2f * scale);
  // Before the window fills, nothing differs.
  EXPECT_LE(max_diff(std::span(prefill).first(kWindow * vocab), std::span(unwindowed).first(kWindow * vocab)), 1e-4f * scale);

  // GGUF keeps the window (llama.attention.sliding_window) and the logits.
  QuantizeOptions o;
  o.input = swa.source;
  o.output = swa.source + ".gguf";  // beside the folder, in the test's temporary directory
  o.recipe = "pure:bf16";
  quantize_model(o);
  const Model gguf = load_model(o.output);
  EXPECT_EQ(gguf.config.sliding_window, kWindow);
  EXPECT_LE(max_diff(all_logits(gguf, tokens, false), prefill), 1e-4f * scale);
}

// A Llama block with attention_bias (q, k, v and o biases): qwen2-style's weights and
// q/k/v biases under model_type llama, plus zero o_proj biases, is the same function as
// qwen2-style. From the folder and from lowbit's GGUF (general.architecture llama, so q/k
// rows and their biases permuted to adjacent pairs) it gives qwen2-style's reference.
TEST(Archs, LlamaWithAttentionBiasesInGguf) {
  const std::string src = test::shared_path("testdata/archs/qwen2-style"), dir = test::temp_dir() + "/llama-bias";
  std::filesystem::create_directories(dir);
  std::filesystem::copy_file(src + "/tokenizer.model", dir + "/tokenizer.model");
  Json config = read_json_file(src + "/config.json");
  config["model_type"] = "llama";
  config["architectures"] = Json::array({"LlamaForCausalLM"});
  config["attention_bias"] = true;
  std::ofstream(dir + "/config.json") << config.dump();
  const SafetensorsFile weights(src + "/model.safetensors");
  std::vector<TensorToWrite> tensors;
  for (const TensorView& t : weights.tensors()) tensors.push_back({t.name, t.dtype, t.shape, t.data});
  const int64_t dim = config["hidden_size"].get<int64_t>(), layers = config["num_hidden_layers"].get<int64_t>();
  const std::vector<uint8_t> zeros(static_cast<size_t>(2 * dim), 0);  // bf16 zeros
  for (int64_t l = 0; l < layers; ++l) {
    tensors.push_back({"model.layers." + std::to_string(l) + ".self_attn.o_proj.bias", DType::BF16, {dim}, zeros});
  }
  write_safetensors(dir + "/model.safetensors", tensors);

  const SafetensorsFile ref(src + "/reference-logits.safetensors");
  const std::vector<int32_t> tokens = int_tensor(ref, "tokens");
  const TensorView* lt = ref.find("logits");
  const std::span<const float> want(reinterpret_cast<const float*>(lt->data.data()), static_cast<size_t>(lt->numel()));
  QuantizeOptions o;
  o.input = dir;
  o.output = dir + ".gguf";
  o.recipe = "pure:bf16";
  quantize_model(o);
  for (const std::string& path : {dir, o.output}) {
    const Model m = load_model(path);
    EXPECT_EQ(m.config.architecture, "llama");
    EXPECT_EQ(m.config.attention_bias, BiasSet::kQkvo);
    EXPECT_LE(max_diff(all_logits(m, tokens, false), want), 1e-4f * max_abs(want)) << path;
  }
}

// The GGUF lowbit writes for each folder (all f32) against the layout llama.cpp's
// converter writes for it (tests/data/llama_cpp_layouts, see its README): the same tensor
// names, dims and types, and the same architecture keys with the same types and values.
// Not compared: general.name (the converter derives it from the folder name) and the
// tokenizer keys (the tokenizer tests cover them).
TEST(Archs, GgufLayoutMatchesLlamaCppConverter) {
  const std::string tmp = test::temp_dir();
  for (const char* arch : kArchs) {
    const Json want = read_json_file(std::string(LOWBIT_SOURCE_DIR) + "/tests/data/llama_cpp_layouts/" + arch + ".json");
    QuantizeOptions o;
    o.input = test::shared_path(std::string("testdata/archs/") + arch);
    o.output = tmp + "/" + arch + ".gguf";
    o.recipe = "pure:f32";
    quantize_model(o);
    const GgufFile f(o.output);
    std::set<std::string> names;
    for (const GgufTensor& t : f.tensors()) {
      names.insert(t.name);
      ASSERT_TRUE(want["tensors"].contains(t.name)) << arch << ": lowbit writes " << t.name << ", the converter does not";
      const Json& w = want["tensors"][t.name];
      EXPECT_EQ(t.dims, w["dims"].get<std::vector<int64_t>>()) << arch << " " << t.name;
      EXPECT_EQ(t.type, w["type"].get<int32_t>()) << arch << " " << t.name;
    }
    EXPECT_EQ(names.size(), want["tensors"].size()) << arch << ": the converter writes tensors lowbit does not";
    for (const auto& [key, w] : want["metadata"].items()) {
      const GgufValue* v = f.find(key);
      ASSERT_NE(v, nullptr) << arch << ": missing key " << key;
      ASSERT_EQ(static_cast<int>(v->type), w["type"].get<int>()) << arch << " " << key;
      if (v->type == GgufType::kString) {
        EXPECT_EQ(v->s, w["value"].get<std::string>()) << arch << " " << key;
      } else if (v->type == GgufType::kF32) {
        EXPECT_EQ(static_cast<float>(v->f), w["value"].get<float>()) << arch << " " << key;
      } else {
        EXPECT_EQ(v->as_int(), w["value"].get<int64_t>()) << arch << " " << key;
      }
    }
    for (const GgufKeyValue& kv : f.metadata()) {
      const bool compared = !kv.key.starts_with("tokenizer.") && !kv.key.starts_with("lowbit.") && kv.key != "general.name";
      if (compared) {
        EXPECT_TRUE(want["metadata"].contains(kv.key)) << arch << ": lowbit writes " << kv.key << ", the converter does not";
      }
    }
  }
}

// Calibration on each architecture: GPTQ and AWQ (through the q/k/v biases of Qwen 2 and
// the q/k norms of Qwen 3) give a lower KL-divergence than rounding to nearest into the
// same q4_0 GGUF.
TEST(Archs, CalibratedMethodsBeatRtn) {
  const std::vector<int32_t> tokens = shakespeare_test_ids();
  const std::string tmp = test::temp_dir();
  std::ofstream(tmp + "/r.json") << R"({"base": "q4_0", "rules": [{"tensor": "token_embd", "format": "f16"},
                                       {"tensor": "output", "format": "f16"}]})";
  for (const char* arch : {"llama3-style", "qwen2-style", "qwen3-style"}) {
    const std::string base = test::shared_path(std::string("testdata/archs/") + arch);
    const PerplexityOptions p = kld_against_base(arch, tokens, tmp, 40);
    std::map<std::string, double> kld;
    for (const auto& [name, method] : {std::pair{"rtn", MethodConfig{"rtn", {}}}, std::pair{"gptq", MethodConfig{"gptq", {}}},
                                       std::pair{"awq", MethodConfig{"awq", {}}}}) {
      QuantizeOptions o;
      o.input = base;
      o.output = tmp + "/" + arch + "-" + name + ".gguf";
      o.recipe = tmp + "/r.json";
      o.method = method;
      if (method.name != "rtn") o.calib = test::shared_path("data/shakespeare-calib.txt");
      o.calib_options = {.samples = 16, .length = 128};
      quantize_model(o);
      kld[name] = compute_perplexity(load_model(o.output), tokens, p).kld->mean;
    }
    std::printf("%s q4_0 KLD: rtn %.5f gptq %.5f awq %.5f\n", arch, kld["rtn"], kld["gptq"], kld["awq"]);
    EXPECT_LT(kld["gptq"], 0.9 * kld["rtn"]) << arch;
    EXPECT_LT(kld["awq"], 0.95 * kld["rtn"]) << arch;
  }
}

// The importance matrix covers every block linear of each architecture (q/k/v seen after
// the norm, o_proj after attention with head_dim 96), a q4_k_m quantization with it finds
// an entry for every block tensor that uses one, and norms, biases and q/k norms stay f32.
TEST(Archs, ImatrixAndRecipesCoverTheNewTensors) {
  const std::vector<int32_t> tokens = shakespeare_test_ids();
  const std::string tmp = test::temp_dir();
  for (const char* arch : kArchs) {
    const std::string base = test::shared_path(std::string("testdata/archs/") + arch);
    const Model m = load_model(base);
    const ImportanceMatrix im = collect_imatrix(m, tokens, 64, 8, "shakespeare-test");
    for (int64_t l = 0; l < m.config.n_layers; ++l) {
      for (const char* linear : {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"}) {
        const std::string name = layer_tensor_name(l, linear);
        ASSERT_TRUE(im.entries.count(name)) << arch << " " << name;
        const int64_t cols = std::string(linear) == "attn_output" ? m.config.q_dim() : std::string(linear) == "ffn_down" ? m.config.hidden_dim : m.config.dim;
        EXPECT_EQ(im.weights_for(name, cols).size(), static_cast<size_t>(cols)) << arch << " " << name;
      }
    }
    im.save(tmp + "/" + arch + ".imatrix.gguf");
    QuantizeOptions o;
    o.input = base;
    o.output = tmp + "/" + arch + ".gguf";
    o.recipe = "q4_k_m";
    o.imatrix = tmp + "/" + arch + ".imatrix.gguf";
    const QuantizeReport r = quantize_model(o);
    for (const std::string& name : r.imatrix_missing) {  // token_embd and output: none, as in llama.cpp's imatrix
      EXPECT_FALSE(name.starts_with("blk.")) << arch << ": no importance for " << name;
    }
    const Model q = load_model(o.output);
    for (const Weight* w : q.weights()) {
      if (w->rows == 1) {
        EXPECT_EQ(w->format->name, std::string_view("f32")) << arch << " " << w->name;
      }
    }
  }
}

// Each layout written as a Hugging Face folder (bf16, from the folder and from lowbit's
// GGUF of it) reads back with the reference logits; its config.json is the architecture's
// (model_type, head_dim, rope_scaling, biases). Qwen 2 with its biases exports as a GPTQ
// checkpoint that lowbit reads back.
TEST(Archs, HuggingFaceFolderOutput) {
  const std::string tmp = test::temp_dir();
  for (const char* arch : kArchs) {
    const std::string src = test::shared_path(std::string("testdata/archs/") + arch);
    const SafetensorsFile ref(src + "/reference-logits.safetensors");
    const std::vector<int32_t> tokens = int_tensor(ref, "tokens");
    const TensorView* lt = ref.find("logits");
    const std::span<const float> want(reinterpret_cast<const float*>(lt->data.data()), static_cast<size_t>(lt->numel()));
    const std::string gguf = tmp + "/" + arch + ".gguf";
    QuantizeOptions o;
    o.input = src;
    o.output = gguf;
    o.recipe = "pure:bf16";
    quantize_model(o);
    for (const std::string& input : {src, gguf}) {
      o.input = input;
      o.output = tmp + "/" + arch + (input == src ? "-from-folder" : "-from-gguf");
      if (input == gguf && std::string(arch) == "llama3-style") {
        // A GGUF holds llama3 scaling as per-frequency divisors, which config.json cannot say.
        EXPECT_THROW(quantize_model(o), Error);
        EXPECT_FALSE(std::filesystem::exists(o.output));
        continue;
      }
      quantize_model(o);
      const Json config = read_json_file(o.output + "/config.json");
      const Json original = read_json_file(src + "/config.json");
      for (const char* key : {"model_type", "architectures", "head_dim", "rope_scaling", "tie_word_embeddings", "num_key_value_heads"}) {
        if (original.contains(key)) {
          EXPECT_EQ(config[key], original[key]) << arch << " " << key;
        }
      }
      const Model m = load_model(o.output);
      EXPECT_LE(max_diff(all_logits(m, tokens, false), want), 1e-4f * max_abs(want)) << o.output;
    }
  }
  QuantizeOptions g;
  g.input = test::shared_path("testdata/archs/qwen2-style");
  g.output = tmp + "/qwen2-gptq";
  g.recipe = "pure:int4_g128_asym";
  g.export_layout = "gptq";
  quantize_model(g);
  const Model q = load_model(g.output);
  EXPECT_EQ(q.quant_method, "gptq");
  EXPECT_EQ(q.config.architecture, "qwen2");
  ASSERT_NE(q.layers[0].attn_q_bias.format, nullptr);
  EXPECT_EQ(q.layers[0].attn_q_bias.to_f32(), load_model(g.input).layers[0].attn_q_bias.to_f32());
}

// YaRN (rope_scaling type yarn): pairs that turn more than beta_fast times over the
// original context keep their angle, those under beta_slow turn factor times slower, and
// cos and sin carry 0.1 ln(factor) + 1. The model runs the same from its folder, from its
// GGUF (rope.scaling.* keys) and from a folder lowbit wrote. llama.cpp c392e50 gives the
// same perplexity on the GGUF (docs/FORMATS.md).
TEST(Archs, YarnRopeScaling) {
  RopeScaling y{.type = RopeScalingType::kYarn, .factor = 4.0f, .original_context = 64};
  const int64_t hd = 64, half = hd / 2, ctx = 256;
  const RopeTable plain(ctx, hd, 10000.0f), yarn(ctx, hd, 10000.0f, y);
  // Pair i turns 64 * 10000^(-2i/64) / (2 pi) times over the 64 original positions: more
  // than 32 for none, fewer than 1 from i = 9 on (the ramp's ends, floor and ceil: 0 and 9).
  const float m = 0.1f * std::log(4.0f) + 1.0f;
  for (int64_t p : {1, 7, 100, 255}) {
    for (int64_t i = 0; i < half; ++i) {
      const float c = yarn.cos[p * half + i], sn = yarn.sin[p * half + i];
      EXPECT_NEAR(std::hypot(c, sn), m, 1e-5f);
      const double freq = std::pow(10000.0, -2.0 * static_cast<double>(i) / hd);
      if (i >= 9) {
        EXPECT_NEAR(std::atan2(sn, c), std::remainder(p * freq / 4.0, 2 * M_PI), 1e-3) << p << " " << i;
      }
    }
    EXPECT_NEAR(yarn.cos[p * half] / m, plain.cos[p * half], 1e-5f);  // pair 0: the ramp's start, kept
  }
  const std::string tmp = test::temp_dir();
  const std::string dir = tmp + "/qwen2-yarn";
  std::filesystem::create_directories(dir);
  const std::string src = test::shared_path("testdata/archs/qwen2-style");
  for (const char* f : {"model.safetensors", "tokenizer.model"}) std::filesystem::copy_file(src + "/" + f, dir + "/" + f);
  Json config = read_json_file(src + "/config.json");
  config["rope_scaling"] = {{"type", "yarn"}, {"factor", 4.0}, {"original_max_position_embeddings", 64}};
  std::ofstream(dir + "/config.json") << config.dump();
  const Model folder = load_model(dir);
  ASSERT_EQ(folder.config.rope_scaling.type, RopeScalingType::kYarn);
  const SafetensorsFile ref(src + "/reference-logits.safetensors");
  const std::vector<int32_t> tokens = int_tensor(ref, "tokens");
  const auto want = all_logits(folder, tokens, false);
  EXPECT_GT(max_diff(want, all_logits(load_model(src), tokens, false)), 1e-2f * max_abs(want));  // the scaling matters
  QuantizeOptions o;
  o.input = dir;
  o.output = tmp + "/qwen2-yarn.gguf";
  o.recipe = "pure:bf16";
  quantize_model(o);
  o.input = o.output;
  o.output = tmp + "/qwen2-yarn-hf";
  quantize_model(o);
  for (const std::string& path : {tmp + "/qwen2-yarn.gguf", o.output}) {
    EXPECT_LE(max_diff(all_logits(load_model(path), tokens, false), want), 1e-4f * max_abs(want)) << path;
  }
  expect_error_naming(edited_copy("qwen2-style", [](Json& j) { j["rope_scaling"] = {{"type", "yarn"}, {"factor", 4.0}, {"mscale", 0.7}}; }),
                      "rope_scaling.mscale");
}

// Linear RoPE scaling: position 2p with factor 2 turns as far as position p unscaled, and
// the GGUF keeps it (rope.scaling.type linear, rope.scaling.factor) with the folder's logits.
TEST(Archs, LinearRopeScaling) {
  const RopeTable plain(64, 64, 10000.0f), linear(64, 64, 10000.0f, RopeScaling{.type = RopeScalingType::kLinear, .factor = 2.0f});
  for (int64_t p = 0; p < 32; ++p) {
    for (int64_t i = 0; i < 32; ++i) {
      EXPECT_NEAR(linear.cos[2 * p * 32 + i], plain.cos[p * 32 + i], 1e-5f);
      EXPECT_NEAR(linear.sin[2 * p * 32 + i], plain.sin[p * 32 + i], 1e-5f);
    }
  }
  const std::string dir = edited_copy("qwen2-style", [](Json& j) { j["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}}; });
  const std::vector<int32_t> tokens = shakespeare_test_ids();
  const std::span<const int32_t> first(tokens.data(), 64);
  const auto want = all_logits(load_model(dir), first, false);
  QuantizeOptions o;
  o.input = dir;
  o.output = dir + ".gguf";
  o.recipe = "pure:bf16";
  quantize_model(o);
  const Model gguf = load_model(o.output);
  EXPECT_EQ(gguf.config.rope_scaling.type, RopeScalingType::kLinear);
  EXPECT_EQ(gguf.config.rope_scaling.factor, 2.0f);
  EXPECT_LE(max_diff(all_logits(gguf, first, false), want), 1e-4f * max_abs(want));
}

}  // namespace
}  // namespace lowbit
