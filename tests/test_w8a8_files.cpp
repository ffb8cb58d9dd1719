// W8A8 and FP8 schemes as files: `quantize --method w8a8|llm_int8|fp8 [--act per-tensor]`
// records its activations (compressed-tensors input_activations, bitsandbytes'
// llm_int8_threshold, lowbit's own config) and the static scales (input_scale per linear),
// and the loaded model runs them; the static scales are the calibration maxima; static rows
// clamp and round as their definition says; int8_pc_sym weights run the int8 GEMM; the FP8
// path stays within the bound of its two roundings; and scale tensors that do not fit the
// model are refused, naming the file and the tensor.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "lowbit/calibration.h"
#include "lowbit/engine.h"
#include "lowbit/error.h"
#include "lowbit/float_convert.h"
#include "lowbit/kernels.h"
#include "lowbit/model_io.h"
#include "lowbit/perplexity.h"
#include "lowbit/quantize.h"
#include "lowbit/safetensors.h"
#include "model/layers.h"
#include "test_support.h"

namespace lowbit {
namespace {

const char* kModel = "models/shakespeare-llama-4m";

QuantizeOptions scheme(const std::string& out, const char* format, const char* act, bool per_tensor, const std::string& layout) {
  QuantizeOptions o;
  o.input = test::shared_path(kModel);
  o.output = out;
  o.recipe = std::string("pure:") + format;
  o.export_layout = layout;
  o.activations.act = act;
  o.activations.per_tensor = per_tensor;
  if (per_tensor) {
    o.calib = test::shared_path("data/shakespeare-calib.txt");
    o.calib_options = {.samples = 8, .length = 64, .seed = 0};
  }
  return o;
}

std::vector<const Weight*> linears(const Model& m) {
  std::vector<const Weight*> out;
  for (const auto& l : m.layers) {
    for (const Weight* w : {&l.attn_q, &l.attn_k, &l.attn_v, &l.attn_output, &l.ffn_gate, &l.ffn_up, &l.ffn_down}) out.push_back(w);
  }
  return out;
}

double ppl(const Model& m, const ActQuantOptions& act) {
  auto tokens = m.tokenizer->encode(test::read_file(test::shared_path("data/shakespeare-test.txt")), true);
  tokens.resize(1024);
  PerplexityOptions p;
  p.n_ctx = 128;
  p.act = act;
  return compute_perplexity(m, tokens, p).ppl;
}

TEST(W8A8Files, SchemesRoundTripAndRun) {
  const std::string dir = test::temp_dir();
  struct Case {
    const char* format;
    const char* act;
    bool per_tensor;
    const char* layout;
    const char* runs;  // act_quant_for(model, "").name
  };
  const Case cases[] = {{"int8_pc_sym", "int8", false, "compressed-tensors", "int8"},
                        {"int8_pc_sym", "int8", true, "compressed-tensors", "int8_static"},
                        {"int8_pc_sym", "int8", true, "", "int8_static"},
                        {"fp8_e4m3", "fp8_e4m3", false, "compressed-tensors", "fp8_e4m3"},
                        {"fp8_e4m3", "fp8_e4m3", true, "compressed-tensors", "fp8_e4m3_static"},
                        {"fp8_e5m2", "fp8_e5m2", false, "", "fp8_e5m2"},
                        {"bnb_int8", "llm_int8", false, "bnb", "llm_int8"}};
  const Model base = load_model(test::shared_path(kModel));
  const double base_ppl = ppl(base, {});
  int i = 0;
  for (const Case& c : cases) {
    const std::string out = dir + "/case" + std::to_string(i++);
    quantize_model(scheme(out, c.format, c.act, c.per_tensor, c.layout));
    const Model m = load_model(out);
    const std::string what = std::string(c.format) + " " + c.runs + " " + c.layout;
    EXPECT_EQ(m.activations.act, c.act) << what;
    EXPECT_EQ(m.activations.per_tensor, c.per_tensor) << what;
    EXPECT_EQ(m.layers[0].attn_q.format->name, std::string_view(c.format)) << what;
    for (const Weight* w : linears(m)) {
      if (c.per_tensor) {
        EXPECT_GT(w->input_scale, 0.0f) << what << " " << w->name;
      } else {
        EXPECT_EQ(w->input_scale, 0.0f) << what << " " << w->name;
      }
    }
    const ActQuantOptions act = act_quant_for(m, "");
    EXPECT_EQ(act.name, c.runs) << what;
    // 8-bit weights and activations cost little on this model; float inputs are another
    // number (the activations do run).
    const double q = ppl(m, act), float_acts = ppl(m, {});
    EXPECT_LT(std::fabs(q / base_ppl - 1), 0.03) << what << " ppl " << q << " base " << base_ppl;
    EXPECT_NE(q, float_acts) << what;
  }
  // An explicit --act wins over the recorded one; static scales need input_scale.
  const Model dynamic = load_model(dir + "/case0");
  EXPECT_EQ(act_quant_for(dynamic, "none").format, nullptr);
  EXPECT_THROW(ppl(dynamic, act_quant_options("int8_static")), Error);
  EXPECT_THROW(act_quant_options("llm_int8_static"), Error);
  // GGUF has no place for activations; GPTQ's layout records none.
  EXPECT_THROW(quantize_model(scheme(dir + "/x.gguf", "q8_0", "int8", false, "")), Error);
  EXPECT_THROW(quantize_model(scheme(dir + "/gptq", "int8_g128_sym", "int8", false, "gptq")), Error);
  EXPECT_FALSE(std::filesystem::exists(dir + "/x.gguf"));
}

// Block 0's q/k/v read rmsnorm(embedding) whatever was quantized before them, so their
// static scale is that input's maximum over the calibration samples / 127.
TEST(W8A8Files, StaticScalesAreTheCalibrationMaxima) {
  const std::string out = test::temp_dir() + "/static";
  QuantizeOptions o = scheme(out, "int8_pc_sym", "int8", true, "");
  quantize_model(o);
  const Model base = load_model(o.input), m = load_model(out);
  const CalibrationSet calib = load_calibration(base, o.calib, o.calib_options);
  float absmax = 0;
  Engine e(base, o.calib_options.length);
  e.set_observer([&](const ObservedInput& in) {
    if (in.layer != 0 || in.weights.front() != &base.layers[0].attn_q) return;
    for (int64_t i = 0; i < in.T * in.cols; ++i) absmax = std::max(absmax, std::fabs(in.x[i]));
  });
  std::vector<float> logits(static_cast<size_t>(o.calib_options.length * base.config.vocab_size));
  for (const auto& s : calib.samples) e.forward(s, 0, logits.data());
  ASSERT_GT(absmax, 0.0f);
  for (const Weight* w : {&m.layers[0].attn_q, &m.layers[0].attn_k, &m.layers[0].attn_v}) EXPECT_EQ(w->input_scale, absmax / 127.0f) << w->name;
  EXPECT_NE(m.layers[0].ffn_gate.input_scale, m.layers[0].attn_q.input_scale);
}

// Static rows: q = clamp(round(x / s)) in the format's range, decoded as q · s.
TEST(W8A8Files, StaticRowsClampAndRound) {
  const float s = 0.037f;
  std::vector<float> x = test::gaussian(3 * 77, 5, 2.0f);
  x[4] = 1000.0f;  // beyond every range: clamps
  x[9] = -1000.0f;
  for (const char* name : {"bnb_int8", "fp8_e4m3", "fp8_e5m2"}) {
    const Format& f = format_by_name(name);
    const auto rows = quantize_static_rows(f, x.data(), 3, 77, s);
    std::vector<float> got(x.size());
    f.dequantize(rows.data(), 3, 77, 0, 3, got.data());
    for (size_t i = 0; i < x.size(); ++i) {
      float want;
      if (f.name == std::string_view("bnb_int8")) {
        want = std::clamp(std::nearbyint(x[i] / s), -128.0f, 127.0f) * s;
        ASSERT_NEAR(got[i], want, 2e-7f * std::fabs(want)) << name << " " << i;  // q · (127 s) / 127
      } else {
        const bool e4 = f.name == std::string_view("fp8_e4m3");
        const float max = e4 ? 448.0f : 57344.0f, v = std::clamp(x[i] / s, -max, max);
        want = (e4 ? fp8_e4m3_to_fp32(fp32_to_fp8_e4m3(v)) : fp8_e5m2_to_fp32(fp32_to_fp8_e5m2(v))) * s;
        ASSERT_EQ(got[i], want) << name << " " << i;
      }
    }
  }
  EXPECT_THROW(quantize_static_rows(format_by_name("q8_0"), x.data(), 3, 77, s), Error);
}

// int8_pc_sym weights meet int8 activations in the int8 GEMM: their rows convert with the
// same codes and scale, and the engine's fast path gives the scalar reference's logits.
TEST(W8A8Files, Int8PerChannelWeightsRunTheInt8Gemm) {
  const Model base = load_model(test::shared_path(kModel));
  Model m = base;
  const Format& int8 = format_by_name("int8_pc_sym");
  for (auto& l : m.layers) {
    for (Weight* w : {&l.attn_q, &l.attn_k, &l.attn_v, &l.attn_output, &l.ffn_gate, &l.ffn_up, &l.ffn_down}) {
      auto bytes = std::make_shared<const std::vector<uint8_t>>(quantize_tensor(int8, w->to_f32(), w->rows, w->cols));
      *w = Weight{w->name, &int8, w->rows, w->cols, *bytes, bytes};
    }
  }
  const Weight& w = m.layers[1].ffn_down;
  const auto panels = w8a8_weight_panels(w);
  const auto decoded = w.to_f32();
  const int64_t pb = w8a8_panel_bytes(w.cols);
  ASSERT_EQ(static_cast<int64_t>(panels.size()), (w.rows + 3) / 4 * pb);
  for (int64_t r = 0; r < w.rows; ++r) {
    const uint8_t* p = panels.data() + (r / 4) * pb;
    float absmax;
    int32_t sum = 0, stored;
    std::memcpy(&absmax, p + 4 * (r % 4), 4);
    std::memcpy(&stored, p + 16 + 4 * (r % 4), 4);
    for (int64_t c = 0; c < w.cols; ++c) {
      const int8_t q = static_cast<int8_t>(p[32 + ((c / 64) * 4 + r % 4) * 64 + c % 64]);
      sum += q;
      ASSERT_NEAR(static_cast<float>(q) * absmax / 127.0f, decoded[r * w.cols + c], 2e-7f * std::fabs(decoded[r * w.cols + c])) << r << " " << c;
    }
    ASSERT_EQ(sum, stored) << r;
  }
  EXPECT_TRUE(w8a8_weight_panels(base.layers[0].attn_q).empty());  // f32: no int8 panels
  auto tokens = base.tokenizer->encode(test::read_file(test::shared_path("data/shakespeare-test.txt")), true);
  tokens.resize(40);
  auto logits = [&](bool reference) {
    Engine e(m, 40);
    e.set_activation_quant(act_quant_options("int8"));
    e.use_reference_kernels(reference);
    std::vector<float> out(static_cast<size_t>(40 * m.config.vocab_size));
    e.forward(tokens, 0, out.data());
    return out;
  };
  const auto fast = logits(false), ref = logits(true);
  float amax = 0, err = 0;
  for (size_t i = 0; i < fast.size(); ++i) {
    amax = std::max(amax, std::fabs(ref[i]));
    err = std::max(err, std::fabs(fast[i] - ref[i]));
  }
  // Same int32 sums; only float order outside them differs (and the rounding it feeds).
  EXPECT_LE(err, (4.0f * static_cast<float>(m.config.n_layers) + 1) / 254.0f * amax);
}

// The FP8 path of one linear (per-token E4M3 activations, E4M3 weights per row, the fused
// kernel) against the exact float product: each rounding moves a value by at most
// 2^-4 of itself or, below E4M3's normal range, 2^-10 of the row's scale, so
// |y − Σ a·b| ≤ Σ (|δa|·|b| + |â|·|δb|), a bound of the order of 2^-3 Σ|a·b|.
TEST(W8A8Files, Fp8PathWithinTheBoundOfItsRoundings) {
  const Format& f = format_by_name("fp8_e4m3");
  for (int64_t cols : {33, 160, 1001}) {
    const int64_t rows = 19, T = 5;
    const auto w = test::student_t3(static_cast<size_t>(rows * cols), 11 + cols), x = test::student_t3(static_cast<size_t>(T * cols), 3 + cols, 4.0f);
    auto wb = std::make_shared<const std::vector<uint8_t>>(quantize_tensor(f, w, rows, cols));
    const Weight wq{"w", &f, rows, cols, *wb, wb};
    const auto xq = quantize_tensor(f, x, T, cols);
    std::vector<float> xd(x.size()), y(static_cast<size_t>(T * rows));
    f.dequantize(xq.data(), T, cols, 0, T, xd.data());
    matmul(wq, xd.data(), T, y.data());
    auto bound = [](const float* v, int64_t n, int64_t i) {  // |rounding error| of v[i] in its row
      float amax = 0;
      for (int64_t j = 0; j < n; ++j) amax = std::max(amax, std::fabs(v[j]));
      return std::max(std::fabs(v[i]) / 16.0f, amax / 448.0f / 1024.0f);
    };
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t r = 0; r < rows; ++r) {
        double exact = 0, tol = 0, sum_abs = 0;
        for (int64_t i = 0; i < cols; ++i) {
          const double a = x[t * cols + i], b = w[r * cols + i];
          exact += a * b;
          sum_abs += std::fabs(a * b);
          const double da = bound(x.data() + t * cols, cols, i), db = bound(w.data() + r * cols, cols, i);
          tol += da * std::fabs(b) + (std::fabs(a) + da) * db;
        }
        tol += 1e-6 * sum_abs;  // f32 sums
        EXPECT_LE(std::fabs(y[t * rows + r] - exact), tol) << cols << " " << t << " " << r;
        EXPECT_LE(tol, 0.14 * sum_abs + 1e-3 * sum_abs);
      }
    }
  }
}

// Static per-tensor int8 activations lose most on down_proj's input (the block's largest
// values, in a few channels); SmoothQuant with its linear-fed groups (up → down) moves them
// into the weights and cuts W8A8's KLD; smooth.py's norm-fed groups alone cannot.
TEST(W8A8Files, SmoothQuantLowersStaticW8A8Kld) {
  const std::string dir = test::temp_dir();
  const Model base = load_model(test::shared_path(kModel));
  auto tokens = base.tokenizer->encode(test::read_file(test::shared_path("data/shakespeare-test.txt")), true);
  tokens.resize(2048);
  PerplexityOptions p = test::kld_against(base, tokens, 256, dir);
  auto kld = [&](const std::string& name, const char* method, const char* linear_fed) {
    QuantizeOptions o = scheme(dir + "/" + name, "int8_pc_sym", "int8", true, "");
    o.calib_options = {.samples = 16, .length = 128, .seed = 0};
    o.method.name = method;
    if (linear_fed != nullptr) o.method.options = {{"alpha", "0.8"}, {"linear-fed", linear_fed}};
    quantize_model(o);
    const Model m = load_model(o.output);
    p.act = act_quant_for(m, "");
    EXPECT_EQ(p.act.name, "int8_static");
    return compute_perplexity(m, tokens, p).kld->mean;
  };
  const double w8a8 = kld("w8a8", "rtn", nullptr), smooth = kld("sq", "smoothquant", "true"), norm_only = kld("sq-norm", "smoothquant", "false");
  EXPECT_LT(smooth, 0.4 * w8a8) << "SmoothQuant " << smooth << ", W8A8 " << w8a8;
  EXPECT_GT(norm_only, 0.7 * w8a8) << "norm-fed groups only: " << norm_only << ", W8A8 " << w8a8;
}

// Rewrites a folder's model.safetensors with `edit` applied to its tensor list.
void rewrite_tensors(const std::string& dir, const std::function<void(std::vector<TensorToWrite>&, std::vector<std::vector<uint8_t>>&)>& edit) {
  std::vector<TensorToWrite> tensors;
  std::vector<std::vector<uint8_t>> keep;
  std::map<std::string, std::string> meta;
  {
    const SafetensorsFile f(dir + "/model.safetensors");
    meta = f.metadata();
    keep.reserve(f.tensors().size() + 4);
    for (const auto& t : f.tensors()) {
      keep.emplace_back(t.data.begin(), t.data.end());
      tensors.push_back({t.name, t.dtype, t.shape, keep.back()});
    }
    edit(tensors, keep);
    write_safetensors(dir + "/model.safetensors.new", tensors, meta);
  }
  std::filesystem::rename(dir + "/model.safetensors.new", dir + "/model.safetensors");
}

void expect_error(const std::string& dir, const std::string& tensor, const std::string& words) {
  try {
    load_model(dir);
    ADD_FAILURE() << "loaded " << dir;
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find(tensor), std::string::npos) << m;
    EXPECT_NE(m.find(words), std::string::npos) << m;
    EXPECT_NE(m.find(dir), std::string::npos) << m;
  }
}

TEST(W8A8Files, ScalesThatDoNotFitTheModelAreRefused) {
  const std::string dir = test::temp_dir();
  const std::string scale = "model.layers.1.mlp.up_proj.input_scale";
  // Two values where one per-tensor scale belongs.
  const std::string two = dir + "/two";
  quantize_model(scheme(two, "int8_pc_sym", "int8", true, "compressed-tensors"));
  rewrite_tensors(two, [&](auto& tensors, auto& keep) {
    for (auto& t : tensors) {
      if (t.name != scale) continue;
      keep.emplace_back(8, 0);
      const float v[2] = {0.1f, 0.2f};
      std::memcpy(keep.back().data(), v, 8);
      t.shape = {2};
      t.data = keep.back();
    }
  });
  expect_error(two, scale, "one value");
  // A negative scale, and a NaN one.
  for (const float bad : {-0.5f, std::nanf("")}) {
    const std::string d = dir + (bad < 0 ? "/negative" : "/nan");
    quantize_model(scheme(d, "int8_pc_sym", "int8", true, ""));
    rewrite_tensors(d, [&](auto& tensors, auto& keep) {
      for (auto& t : tensors) {
        if (t.name != scale) continue;
        keep.emplace_back(4, 0);
        std::memcpy(keep.back().data(), &bad, 4);
        t.data = keep.back();
      }
    });
    expect_error(d, scale, "positive and finite");
  }
  // Static activations declared, the scales of another (dynamic) model's file: none.
  const std::string missing = dir + "/missing";
  quantize_model(scheme(missing, "int8_pc_sym", "int8", false, "compressed-tensors"));
  {
    std::ifstream in(missing + "/config.json");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto at = text.find("\"strategy\": \"token\"");
    ASSERT_NE(at, std::string::npos);
    text.replace(at, 19, "\"strategy\": \"tensor\"");
    const auto dyn = text.find("\"dynamic\": true");
    ASSERT_NE(dyn, std::string::npos);
    text.replace(dyn, 15, "\"dynamic\": false");
    std::ofstream(missing + "/config.json") << text;
  }
  expect_error(missing, "blk.0.attn_q.weight", "no input_scale");
}

}  // namespace
}  // namespace lowbit
