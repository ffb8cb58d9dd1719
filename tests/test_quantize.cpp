// The quantize pipeline on the shared models: every built-in recipe loads back and KLD
// grows as bits fall; the importance matrix helps where it should; outputs are byte-stable
// and re-read intact; rows that fit no k-quant fall back instead of failing; recipes load
// from JSON; imatrix files round-trip in llama.cpp's formats.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <algorithm>
#include <iostream>
#include <map>
#include <sstream>

#include "lowbit/engine.h"
#include "lowbit/error.h"
#include "lowbit/safetensors.h"
#include "lowbit/gguf.h"
#include "lowbit/imatrix.h"
#include "lowbit/model_io.h"
#include "lowbit/perplexity.h"
#include "lowbit/quantize.h"
#include "lowbit/recipe.h"
#include "test_support.h"

namespace lowbit {
namespace {

struct SharedModel {
  std::string name, path, eval_text, calib_text;
  int64_t n_ctx, chunks;
};

const std::vector<SharedModel>& shared_models() {
  static const std::vector<SharedModel> m{
      {"stories260K", "models/stories260K/stories260K.bin", "data/tinystories-valid-30k.txt", "data/tinyshakespeare.txt", 128, 40},
      {"tinystories-656k", "models/tinystories-656k", "data/tinystories-valid-30k.txt", "data/tinyshakespeare.txt", 128, 40},
      {"shakespeare-llama-4m", "models/shakespeare-llama-4m", "data/shakespeare-test.txt", "data/shakespeare-calib.txt", 256, 12},
  };
  return m;
}

struct Measured {
  std::string recipe;
  double bpw, kld, top1, ppl;
};

// Quantizes `model` with `recipe` (and an imatrix) and measures KLD against saved base logits.
Measured measure(const SharedModel& m, const std::string& dir, const std::string& recipe, const std::string& base_logits,
                 const std::vector<int32_t>& tokens, const std::string& imatrix = "") {
  QuantizeOptions o;
  o.input = test::shared_path(m.path);
  o.output = dir + "/" + m.name + "-" + recipe + (imatrix.empty() ? "" : "-imat") + ".gguf";
  o.recipe = recipe;
  o.imatrix = imatrix;
  const QuantizeReport report = quantize_model(o);
  const Model q = load_model(o.output);  // the output loads in lowbit
  EXPECT_EQ(q.parameter_count(), report.parameters);
  PerplexityOptions p;
  p.n_ctx = m.n_ctx;
  p.max_chunks = m.chunks;
  p.kld_base_path = base_logits;
  const auto r = compute_perplexity(q, tokens, p);
  return {recipe, report.bits_per_weight(), r.kld->mean, r.kld->top1_agreement, r.ppl};
}

// Tokenizes the model's evaluation text and saves the base logits to dir/base.logits.
std::vector<int32_t> save_base_logits(const SharedModel& m, const Model& base, const std::string& dir) {
  const auto tokens = base.tokenizer->encode(test::read_file(test::shared_path(m.eval_text)), true);
  PerplexityOptions p;
  p.n_ctx = m.n_ctx;
  p.max_chunks = m.chunks;
  p.save_logits_path = dir + "/base.logits";
  compute_perplexity(base, tokens, p);
  return tokens;
}

class RecipeLadder : public ::testing::TestWithParam<int> {};

TEST_P(RecipeLadder, EveryRecipeLoadsAndKldGrowsAsBitsFall) {
  const SharedModel& m = shared_models()[GetParam()];
  const std::string dir = test::temp_dir();
  const Model base = load_model(test::shared_path(m.path));
  const auto tokens = save_base_logits(m, base, dir);
  std::vector<Measured> rows;
  for (const Recipe& r : builtin_recipes()) {
    if (r.name == "bf16") continue;  // same size as f16
    rows.push_back(measure(m, dir, r.name, dir + "/base.logits", tokens));
  }
  // q4_k_m-f16 spends its extra bits on token_embd/output in f16, a large share of these
  // small models: its bpw says little about its blocks. It must not be worse than q4_k_m;
  // the ladder is checked without it.
  const auto by_name = [&](const std::string& n) {
    return *std::find_if(rows.begin(), rows.end(), [&](const Measured& r) { return r.recipe == n; });
  };
  EXPECT_LE(by_name("q4_k_m-f16").kld, by_name("q4_k_m").kld * 1.05) << m.name;
  std::cout << m.name << " q4_k_m-f16 bpw " << by_name("q4_k_m-f16").bpw << " kld " << by_name("q4_k_m-f16").kld << "\n";
  rows.erase(std::remove_if(rows.begin(), rows.end(), [](const Measured& r) { return r.recipe == "q4_k_m-f16"; }), rows.end());
  std::sort(rows.begin(), rows.end(), [](const Measured& a, const Measured& b) { return a.bpw > b.bpw; });
  std::string table;
  for (const auto& r : rows) {
    table += m.name + " " + r.recipe + " bpw " + std::to_string(r.bpw) + " kld " + std::to_string(r.kld) + " top1 " +
             std::to_string(r.top1) + " ppl " + std::to_string(r.ppl) + "\n";
  }
  std::cout << table;
  // Monotone within a family, allowing noise between neighbours: a recipe with clearly more
  // bits (>= 0.3 bpw) never has clearly more KLD (> 15% + 1e-5). The families are the
  // k-quant mixes and the legacy 32-blocks (q4_0 .. q5_1), each with f16 and q8_0 on top;
  // across them the ladder need not hold (a q4_1 spends its bits less well than a q3_k).
  const auto family = [](const std::string& recipe) {
    const std::string base = load_recipe(recipe).base;
    if (base == "f16" || base == "q8_0") return 0;
    if (base.starts_with("q4_") || base.starts_with("q5_0") || base.starts_with("q5_1")) return base.ends_with("_k") ? 1 : 2;
    return base.starts_with("iq4") ? 3 : 1;
  };
  // The non-linear 4-bit grid beats q4_0 at the same size.
  EXPECT_LT(by_name("iq4_nl").kld, by_name("q4_0").kld) << m.name;
  for (const auto& a : rows) {
    for (const auto& b : rows) {
      const int fa = family(a.recipe), fb = family(b.recipe);
      if ((fa == 0 || fb == 0 || fa == fb) && a.bpw >= b.bpw + 0.3) {
        EXPECT_LE(a.kld, b.kld * 1.15 + 1e-5) << m.name << ": " << a.recipe << " (" << a.bpw << " bpw) vs " << b.recipe << " (" << b.bpw << " bpw)";
      }
    }
  }
  EXPECT_LT(rows.front().kld, 2e-3) << "the widest recipe is nearly lossless";
  EXPECT_GT(rows.back().kld, rows.front().kld * 10) << "the narrowest costs clearly more";
}

INSTANTIATE_TEST_SUITE_P(SharedModels, RecipeLadder, ::testing::Values(0, 1, 2),
                         [](const auto& info) { return std::string(info.param == 0 ? "stories260K" : info.param == 1 ? "tinystories656k" : "shakespeare4m"); });

TEST(Imatrix, HelpsInDomainAndDoesNoHarmOutOfDomain) {
  for (const auto& m : shared_models()) {
    const std::string dir = test::temp_dir();
    const Model base = load_model(test::shared_path(m.path));
    const auto calib = base.tokenizer->encode(test::read_file(test::shared_path(m.calib_text)), true);
    const ImportanceMatrix im = collect_imatrix(base, calib, m.n_ctx, 40, m.calib_text);
    EXPECT_EQ(static_cast<int64_t>(im.entries.size()), 7 * base.config.n_layers) << m.name;
    const std::string im_path = dir + "/imatrix.gguf";
    im.save(im_path);
    const auto tokens = save_base_logits(m, base, dir);
    int low_bit_recipes = 0;
    for (const char* recipe : {"q3_k_s", "q2_k", "q2_k_s", "q2_k_xs"}) {
      const Measured plain = measure(m, dir, recipe, dir + "/base.logits", tokens);
      const Measured with = measure(m, dir, recipe, dir + "/base.logits", tokens, im_path);
      std::cout << m.name << " " << recipe << " bpw " << plain.bpw << " kld without " << plain.kld << " with " << with.kld << "\n";
      if (m.name == "shakespeare-llama-4m" && plain.bpw <= 3.5) {
        ++low_bit_recipes;
        EXPECT_LT(with.kld, plain.kld) << m.name << " " << recipe << ": calibrated in domain, the imatrix must help";
      } else {
        EXPECT_LE(with.kld, plain.kld * 1.05) << m.name << " " << recipe << ": the imatrix must not hurt";
      }
    }
    if (m.name == "shakespeare-llama-4m") {
      EXPECT_GE(low_bit_recipes, 3) << "recipes at <= 3.5 bpw";
    }
  }
}

TEST(Quantize, ByteStableAndRereadIntact) {
  const std::string dir = test::temp_dir();
  const std::string src = test::shared_path("models/stories260K/stories260K.bin");
  const Model base = load_model(src);
  for (const char* recipe : {"q8_0", "q4_k_m", "pure:q4_k"}) {
    QuantizeOptions o;
    o.input = src;
    o.recipe = recipe;
    o.output = dir + "/a.gguf";
    quantize_model(o);
    o.output = dir + "/b.gguf";
    const auto report = quantize_model(o);
    EXPECT_EQ(test::read_file(dir + "/a.gguf"), test::read_file(dir + "/b.gguf")) << recipe << ": not byte-stable";
    EXPECT_FALSE(report.fallbacks.empty()) << recipe << ": stories260K's 172-wide rows must fall back";
    // Every tensor re-reads with exactly the bytes its chosen format gives the source.
    const GgufFile f(dir + "/a.gguf");
    for (const Weight* w : base.weights()) {
      const GgufTensor* t = f.find_tensor(w->name);
      ASSERT_NE(t, nullptr) << w->name;
      const Format* fmt = find_format_by_gguf_type(t->type);
      const auto expected = quantize_tensor(*fmt, w->to_f32(), w->rows, w->cols);
      EXPECT_TRUE(std::equal(expected.begin(), expected.end(), t->data.begin(), t->data.end())) << recipe << " " << w->name;
    }
  }
}

TEST(Quantize, FallbacksAreDocumentedAndNeverFail) {
  const Recipe r = load_recipe("q4_k_m");
  // stories260K: 64-wide rows take q5_0, 172-wide rows (ffn_down) take f16.
  EXPECT_EQ(choose_format(r, "blk.0.attn_q.weight", 0, {.n_layers = 5}, 64).format->name, "q5_0");
  EXPECT_EQ(choose_format(r, "blk.1.ffn_down.weight", 1, {.n_layers = 5}, 172).format->name, "f16");
  EXPECT_NE(choose_format(r, "blk.1.ffn_down.weight", 1, {.n_layers = 5}, 172).reason.find("172"), std::string::npos);
  EXPECT_EQ(choose_format(r, "blk.2.attn_v.weight", 2, {.n_layers = 5}, 64).format->name, "q8_0");  // more-bits: q6_k -> q8_0
  EXPECT_EQ(choose_format(r, "blk.0.attn_v.weight", 0, {.n_layers = 5}, 64).format->name, "q5_0");  // q4_k -> q5_0
  EXPECT_EQ(choose_format(r, "blk.2.attn_q.weight", 2, {.n_layers = 32}, 4096).format->name, "q4_k");
  EXPECT_FALSE(choose_format(r, "blk.2.attn_q.weight", 2, {.n_layers = 32}, 4096).fell_back);
  // llama.cpp's use_more_bits on 32 layers: 0-3, 28-31, and (i - 4) % 3 == 2 (6, 9, ..., 27).
  for (int l : {0, 3, 6, 9, 28, 31}) EXPECT_EQ(choose_format(r, layer_tensor_name(l, "attn_v"), l, {.n_layers = 32}, 4096).format->name, "q6_k") << l;
  for (int l : {4, 5, 7, 26}) EXPECT_EQ(choose_format(r, layer_tensor_name(l, "attn_v"), l, {.n_layers = 32}, 4096).format->name, "q4_k") << l;
  EXPECT_EQ(choose_format(r, "output.weight", -1, {.n_layers = 32}, 4096).format->name, "q6_k");
  EXPECT_EQ(fallback_chain(format_by_name("q3_k"))[0]->name, "iq4_nl");
}

TEST(Quantize, RecipesFromJson) {
  const std::string dir = test::temp_dir();
  std::ofstream(dir + "/mix.json") << R"({"name": "mix", "base": "q4_0",
    "rules": [{"tensor": "ffn_*", "layers": "0-1", "format": "q8_0"}, {"tensor": "token_embd", "format": "keep"}]})";
  const Recipe r = load_recipe(dir + "/mix.json");
  EXPECT_EQ(r.rules.size(), 2u);
  EXPECT_EQ(choose_format(r, "blk.1.ffn_up.weight", 1, {.n_layers = 4}, 256).format->name, "q8_0");
  EXPECT_EQ(choose_format(r, "blk.2.ffn_up.weight", 2, {.n_layers = 4}, 256).format->name, "q4_0");
  EXPECT_EQ(choose_format(r, "token_embd.weight", -1, {.n_layers = 4}, 256).format, nullptr);
  std::ofstream(dir + "/bad.json") << R"({"base": "q9_9"})";
  EXPECT_THROW(load_recipe(dir + "/bad.json"), Error);
  std::ofstream(dir + "/bad2.json") << R"({"base": "q4_0", "rules": [{"tensor": "x", "layers": "a-b", "format": "q8_0"}]})";
  EXPECT_THROW(load_recipe(dir + "/bad2.json"), Error);
  EXPECT_THROW(load_recipe("no-such-recipe"), Error);
  EXPECT_EQ(load_recipe("pure:iq4_xs").base, "iq4_xs");
}

TEST(Imatrix, ReadsLlamaCppFormats) {
  const std::string dir = test::temp_dir();
  // Legacy .dat: one entry "blk.0.attn_q.weight", ncall 10, values = mean(x^2) * ncall.
  {
    std::ofstream out(dir + "/legacy.dat", std::ios::binary);
    auto i32 = [&](int32_t v) { out.write(reinterpret_cast<const char*>(&v), 4); };
    i32(1);
    const std::string name = "blk.0.attn_q.weight";
    i32(static_cast<int32_t>(name.size()));
    out << name;
    i32(10);
    i32(4);
    const float values[4] = {10.0f, 20.0f, 0.5f, 1.0f};
    out.write(reinterpret_cast<const char*>(values), 16);
    i32(3);
    i32(4);
    out << "wiki";
  }
  const ImportanceMatrix legacy = ImportanceMatrix::load(dir + "/legacy.dat");
  EXPECT_EQ(legacy.weights_for("blk.0.attn_q.weight", 4), (std::vector<float>{1.0f, 2.0f, 0.05f, 0.1f}));
  EXPECT_EQ(legacy.datasets, std::vector<std::string>{"wiki"});
  EXPECT_THROW(legacy.weights_for("blk.0.attn_q.weight", 8), Error);
  EXPECT_TRUE(legacy.weights_for("blk.1.attn_q.weight", 4).empty());
  // GGUF: the keys and tensors llama.cpp writes, and back.
  ImportanceMatrix im;
  im.entries["blk.0.ffn_down.weight"] = {{3.0, 6.0}, 3};
  im.datasets = {"calib.txt"};
  im.chunk_count = 2;
  im.chunk_size = 512;
  im.save(dir + "/im.gguf");
  const GgufFile f(dir + "/im.gguf");
  EXPECT_EQ(f.get("general.type").s, "imatrix");
  EXPECT_EQ(f.get("imatrix.chunk_size").as_int(), 512);
  ASSERT_NE(f.find_tensor("blk.0.ffn_down.weight.in_sum2"), nullptr);
  ASSERT_NE(f.find_tensor("blk.0.ffn_down.weight.counts"), nullptr);
  const ImportanceMatrix back = ImportanceMatrix::load(dir + "/im.gguf");
  EXPECT_EQ(back.weights_for("blk.0.ffn_down.weight", 2), (std::vector<float>{1.0f, 2.0f}));
  EXPECT_EQ(back.datasets, im.datasets);
  std::ofstream(dir + "/junk.dat", std::ios::binary) << "xx";
  EXPECT_THROW(ImportanceMatrix::load(dir + "/junk.dat"), Error);
}

}  // namespace
}  // namespace lowbit

namespace lowbit {
namespace {

// Max |a - b| relative to max |b| over the logits of the first 64 tokens of a text, with
// the reference kernels.
double logits_distance(const Model& a, const Model& b, const std::vector<int32_t>& tokens) {
  const int64_t T = std::min<int64_t>(64, static_cast<int64_t>(tokens.size()));
  std::vector<float> la(T * a.config.vocab_size), lb(T * b.config.vocab_size);
  Engine ea(a, T), eb(b, T);
  ea.use_reference_kernels(true);  // fp32 activations: no int8 rounding flips between layouts
  eb.use_reference_kernels(true);
  ea.forward(std::span(tokens).first(T), 0, la.data(), true);
  eb.forward(std::span(tokens).first(T), 0, lb.data(), true);
  double max_b = 0, diff = 0;
  for (size_t i = 0; i < la.size(); ++i) {
    max_b = std::max(max_b, static_cast<double>(std::fabs(lb[i])));
    diff = std::max(diff, static_cast<double>(std::fabs(la[i] - lb[i])));
  }
  return diff / max_b;
}

TEST(Quantize, SafetensorsFolderOutput) {
  namespace fs = std::filesystem;
  const std::string dir = test::temp_dir();
  const std::string shakespeare = test::shared_path("models/shakespeare-llama-4m");
  const Model base = load_model(shakespeare);
  const auto tokens = base.tokenizer->encode(test::read_file(test::shared_path("data/shakespeare-test.txt")), true);
  // The same recipe as a folder and as GGUF: the same quantized rows, the same logits.
  QuantizeOptions o;
  o.input = shakespeare;
  o.recipe = "q4_k_m";
  o.output = dir + "/q4";
  quantize_model(o);
  o.output = dir + "/q4.gguf";
  quantize_model(o);
  const Model folder = load_model(dir + "/q4"), gguf = load_model(dir + "/q4.gguf");
  EXPECT_EQ(folder.layers[0].attn_q.format->name, "q4_k");
  EXPECT_EQ(folder.config.rope_style, RopeStyle::kRotateHalf);
  EXPECT_TRUE(fs::exists(dir + "/q4/tokenizer.model"));
  EXPECT_NE(test::read_file(dir + "/q4/config.json").find("\"quant_method\": \"lowbit\""), std::string::npos);
  EXPECT_LT(logits_distance(folder, gguf, tokens), 1e-5);
  // A float recipe gives a plain Hugging Face folder (F16 tensors, standard shapes).
  o.recipe = "f16";
  o.output = dir + "/f16";
  quantize_model(o);
  const SafetensorsFile st(dir + "/f16/model.safetensors");
  EXPECT_EQ(st.tensor("model.layers.0.self_attn.q_proj.weight").dtype, DType::F16);
  EXPECT_EQ(st.tensor("model.layers.0.self_attn.q_proj.weight").shape, (std::vector<int64_t>{256, 256}));
  EXPECT_EQ(st.tensor("model.norm.weight").dtype, DType::F32);
  EXPECT_EQ(test::read_file(dir + "/f16/config.json").find("quantization_config"), std::string::npos);
  EXPECT_LT(logits_distance(load_model(dir + "/f16"), base, tokens), 2e-3);
  // Formats without a GGUF type go to folders only.
  o.recipe = "pure:nf4_dq";
  o.output = dir + "/nf4";
  const auto report = quantize_model(o);
  EXPECT_NEAR(report.bits_per_weight(), 4.13, 0.05);
  EXPECT_LT(logits_distance(load_model(dir + "/nf4"), base, tokens), 0.1);
  o.output = dir + "/nf4.gguf";
  EXPECT_THROW(quantize_model(o), Error);
  // An existing non-empty folder is not overwritten.
  o.output = dir + "/q4";
  EXPECT_THROW(quantize_model(o), Error);
}

TEST(Quantize, FolderFromLlama2cUndoesTheRopeLayout) {
  const std::string dir = test::temp_dir();
  QuantizeOptions o;
  o.input = test::shared_path("models/stories260K/stories260K.bin");
  o.recipe = "f16";
  o.output = dir + "/s";
  quantize_model(o);
  EXPECT_TRUE(std::filesystem::exists(dir + "/s/tokenizer.json"));
  const Model native = load_model(o.input), folder = load_model(dir + "/s");
  EXPECT_EQ(folder.config.rope_style, RopeStyle::kRotateHalf);  // q/k rows now in HF order
  const auto tokens = native.tokenizer->encode(test::read_file(test::shared_path("data/tinystories-sample-4k.txt")), true);
  EXPECT_EQ(folder.tokenizer->encode("Once upon a time", true), native.tokenizer->encode("Once upon a time", true));
  EXPECT_LT(logits_distance(folder, native, tokens), 2e-3);
}

}  // namespace
}  // namespace lowbit
