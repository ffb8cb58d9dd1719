// The layer-wise calibration path: calibration windows and their errors, the observer
// seeing each shared input once, the driver reproducing plain rounding with method rtn,
// and GPTQ beating RTN on a real model at the same bytes.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "lowbit/calibration.h"
#include "lowbit/engine.h"
#include "lowbit/error.h"
#include "lowbit/layerwise.h"
#include "lowbit/model_io.h"
#include "lowbit/perplexity.h"
#include "lowbit/quantize.h"
#include "test_support.h"

namespace lowbit {
namespace {

const std::string kModel = "models/shakespeare-llama-4m";

TEST(Calibration, WindowsAndTheirErrors) {
  const Model m = load_model(test::shared_path(kModel));
  const std::string dir = test::temp_dir();
  std::ofstream(dir + "/empty.txt");
  EXPECT_THROW(load_calibration(m, dir + "/empty.txt", {}), Error);
  EXPECT_THROW(load_calibration(m, dir + "/missing.txt", {}), Error);
  std::ofstream(dir + "/short.txt") << "To be, or not to be.";
  try {
    load_calibration(m, dir + "/short.txt", {.samples = 4, .length = 64});
    ADD_FAILURE() << "a text shorter than one sample was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.context().file, dir + "/short.txt");
    EXPECT_NE(std::string(e.what()).find("shorter than one sample"), std::string::npos) << e.what();
  }
  // More samples than the text holds: those it holds, BOS first, each of the length asked.
  const std::string calib = test::shared_path("data/shakespeare-calib.txt");
  const auto tokens = m.tokenizer->encode(test::read_file(calib), true);
  const int64_t available = static_cast<int64_t>(tokens.size()) / 256;
  const CalibrationSet all = load_calibration(m, calib, {.samples = available + 100, .length = 256});
  EXPECT_EQ(static_cast<int64_t>(all.samples.size()), available);
  for (const auto& s : all.samples) {
    EXPECT_EQ(s.size(), 256u);
    EXPECT_EQ(s[0], m.tokenizer->bos());
  }
  // The choice depends on the seed only; length 0 means min(512, context).
  const CalibrationSet a = load_calibration(m, calib, {.samples = 8, .length = 0, .seed = 1});
  const CalibrationSet b = load_calibration(m, calib, {.samples = 8, .length = 0, .seed = 1});
  const CalibrationSet c = load_calibration(m, calib, {.samples = 8, .length = 0, .seed = 2});
  EXPECT_EQ(a.samples, b.samples);
  EXPECT_NE(a.samples, c.samples);
  EXPECT_EQ(static_cast<int64_t>(a.samples[0].size()), std::min<int64_t>(512, m.config.context_length));
  EXPECT_THROW(load_calibration(m, calib, {.samples = 0}), Error);
  EXPECT_THROW(load_calibration(m, calib, {.samples = 4, .length = m.config.context_length + 1}), Error);
}

TEST(Calibration, ObserverSeesEachSharedInputOnce) {
  const Model m = load_model(test::shared_path(kModel));
  Engine engine(m, 16);
  std::map<std::string, int> seen;
  engine.set_observer([&](const ObservedInput& in) {
    ++seen[in.group.name];
    EXPECT_EQ(in.T, 16);
    for (const Weight* w : in.weights) EXPECT_EQ(w->cols, in.cols);
  });
  std::vector<int32_t> tokens(16, 5);
  engine.forward(tokens, 0, nullptr);
  const int64_t L = m.config.n_layers;
  EXPECT_EQ(seen, (std::map<std::string, int>{{"attn_in", L}, {"attn_out_in", L}, {"ffn_in", L}, {"ffn_down_in", L}}));
}

// With every linear rounded on its own, the driver gives the bytes plain quantization does.
TEST(Calibration, DriverWithRtnGivesThePlainBytes) {
  const Model m = load_model(test::shared_path(kModel));
  const Format& f = format_by_name("int4_g32_asym");
  CalibrationSet calib = load_calibration(m, test::shared_path("data/shakespeare-calib.txt"), {.samples = 2, .length = 32});
  LayerwiseQuantizer lw(m, std::move(calib), [&](const Weight&, int64_t) { return LinearTarget{&f, {"rtn", {}}, {}}; });
  for (int64_t l = 0; l < m.config.n_layers; ++l) {
    const auto block = lw.next_block();
    for (const Weight* w : {&m.layers[l].attn_q, &m.layers[l].attn_v, &m.layers[l].ffn_down}) {
      EXPECT_TRUE(block.at(w->name).bytes == quantize_tensor(f, w->to_f32(), w->rows, w->cols)) << w->name;
    }
    EXPECT_EQ(block.size(), 9u);
  }
  EXPECT_THROW(lw.next_block(), Error);
}

// The evaluation tokens, after saving the base model's logits on them to `path`.
std::vector<int32_t> save_base_logits(const std::string& model, const std::string& path) {
  const Model base = load_model(model);
  const auto tokens = base.tokenizer->encode(test::read_file(test::shared_path("data/shakespeare-test.txt")), true);
  PerplexityOptions p;
  p.n_ctx = 256;
  p.max_chunks = 12;
  p.save_logits_path = path;
  compute_perplexity(base, tokens, p);
  return tokens;
}

double kld_of(const std::string& path, const std::string& base_logits, const std::vector<int32_t>& tokens) {
  PerplexityOptions p;
  p.n_ctx = 256;
  p.max_chunks = 12;
  p.kld_base_path = base_logits;
  return compute_perplexity(load_model(path), tokens, p).kld->mean;
}

// One model quantized several ways for KLD comparisons: block linears in `linears`,
// token_embd and output in f16 (GPTQModel's layout), calibrated on shakespeare-calib.txt.
class LinearsRun {
 public:
  LinearsRun(const std::string& linears, int64_t samples)
      : dir_(test::temp_dir()), model_(test::shared_path(kModel)), samples_(samples) {
    tokens_ = save_base_logits(model_, dir_ + "/base.logits");
    std::ofstream(dir_ + "/r.json") << R"({"base": ")" + linears + R"(", "rules": [{"tensor": "token_embd", "format": "f16"},
                                         {"tensor": "output", "format": "f16"}]})";
  }
  // Quantizes into dir/name with `method`: (tensor bytes, mean KLD against the base).
  std::pair<uint64_t, double> run(const std::string& name, const MethodConfig& method) {
    QuantizeOptions o;
    o.input = model_;
    o.output = dir_ + "/" + name;
    o.recipe = dir_ + "/r.json";
    o.method = method;
    o.calib = method.name == "rtn" ? "" : test::shared_path("data/shakespeare-calib.txt");
    o.calib_options = {.samples = samples_, .length = 256};
    const QuantizeReport r = quantize_model(o);
    return {r.bytes, kld_of(o.output, dir_ + "/base.logits", tokens_)};
  }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_, model_;
  int64_t samples_;
  std::vector<int32_t> tokens_;
};

// GPTQ's block linears in int4_g128 have a clearly lower KLD than RTN's at the same bytes;
// act-order too.
TEST(Calibration, GptqBeatsRtnAtTheSameBytes) {
  LinearsRun r("int4_g128_asym", 32);
  const auto [rtn_bytes, rtn] = r.run("rtn", {"rtn", {}});
  const auto [gptq_bytes, gptq] = r.run("gptq", {"gptq", {}});
  const auto [ao_bytes, ao] = r.run("gptq_ao", {"gptq", {{"act-order", "true"}}});
  std::cout << "int4_g128 KLD: rtn " << rtn << ", gptq " << gptq << ", gptq act-order " << ao << "\n";
  EXPECT_EQ(gptq_bytes, rtn_bytes);
  EXPECT_EQ(ao_bytes, rtn_bytes);
  EXPECT_LT(gptq, 0.8 * rtn);
  EXPECT_LT(ao, 0.8 * rtn);
}

// AWQ at int3_g64: below RTN's KLD at the same bytes; with a one-point grid (s = 1) and no
// clipping it is exactly RTN.
TEST(Calibration, AwqBeatsRtnAndReducesToIt) {
  LinearsRun r("int3_g64_asym", 16);
  const double rtn = r.run("rtn", {"rtn", {}}).second;
  const double awq = r.run("awq", {"awq", {}}).second;
  const double plain = r.run("awq_plain", {"awq", {{"grid", "1"}, {"clip", "false"}, {"duo", "false"}}}).second;
  EXPECT_DOUBLE_EQ(plain, rtn);
  std::cout << "int3_g64 KLD: rtn " << rtn << ", awq " << awq << "\n";
  EXPECT_LT(awq, 0.95 * rtn);
  EXPECT_EQ(test::read_file(r.dir() + "/awq_plain/model.safetensors"), test::read_file(r.dir() + "/rtn/model.safetensors"));
}

// Every calibrated path on a tiny calibration set (fast enough for the sanitizer run):
// AWQ with GPTQ rounding, AWQ rounding k-quants with the observed inputs as importance,
// GPTQ with act-order, into a k-quant GGUF file.
TEST(Calibration, EveryPathRunsOnATinySet) {
  const std::string dir = test::temp_dir();
  int n = 0;
  for (const MethodConfig& m : {MethodConfig{"awq", {{"gptq", "true"}, {"duo", "false"}}}, MethodConfig{"awq", {}},
                                MethodConfig{"gptq", {{"act-order", "true"}}}}) {
    QuantizeOptions o;
    o.input = test::shared_path(kModel);
    o.output = dir + "/" + m.name + std::to_string(n++) + ".gguf";
    o.recipe = "q4_k_m";
    o.method = m;
    o.calib = test::shared_path("data/shakespeare-calib.txt");
    o.calib_options = {.samples = 2, .length = 32};
    const QuantizeReport r = quantize_model(o);
    const Model q = load_model(o.output);
    EXPECT_EQ(q.parameter_count(), r.parameters) << m.name;
    EXPECT_TRUE(r.formats.count("q4_k")) << m.name;
  }
}

TEST(Calibration, CalibratedMethodNeedsText) {
  QuantizeOptions o;
  o.input = test::shared_path(kModel);
  o.output = test::temp_dir() + "/x";
  o.recipe = "pure:int4_g32_asym";
  o.method.name = "gptq";
  EXPECT_THROW(quantize_model(o), Error);
  EXPECT_FALSE(std::filesystem::exists(o.output));
  o.method.name = "gptq";
  o.method.options["no-such-option"] = "1";
  EXPECT_THROW(quantize_model(o), Error);
  o.method = {"awq-typo", {}};
  EXPECT_THROW(quantize_model(o), Error);
}

}  // namespace
}  // namespace lowbit
