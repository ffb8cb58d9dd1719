// W8A8: the int8 tile of every instruction set equals the scalar reference bit for bit, and
// its int32 sum is the exact integer sum, on random codes of odd lengths; an engine whose
// bnb_int8 weights meet int8 activations gives the logits of the same rounded values in
// float; and unknown modes are refused.
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <random>

#include "lowbit/engine.h"
#include "lowbit/error.h"
#include "lowbit/kernels.h"
#include "lowbit/model_io.h"
#include "lowbit/quantize.h"
#include "model/layers.h"
#include "test_support.h"

namespace lowbit {
namespace {

// n bnb_int8 rows of `cols` random codes (the extremes included) with random scales.
std::vector<uint8_t> random_rows(int64_t n, int64_t cols, std::mt19937& rng) {
  std::vector<uint8_t> out(static_cast<size_t>(n * (4 + cols)));
  std::uniform_int_distribution<int> code(-127, 127);
  std::uniform_real_distribution<float> scale(0.01f, 40.0f);
  for (int64_t r = 0; r < n; ++r) {
    uint8_t* row = out.data() + r * (4 + cols);
    const float s = scale(rng);
    std::memcpy(row, &s, 4);
    for (int64_t i = 0; i < cols; ++i) row[4 + i] = static_cast<uint8_t>(static_cast<int8_t>(i % 97 == 3 ? -127 : code(rng)));
  }
  return out;
}

TEST(W8A8, TileIsExactInEverySet) {
  std::mt19937 rng(11);
  for (int64_t cols : {1, 7, 63, 64, 65, 200, 1000, 4097, 65536}) {
    const auto w = random_rows(4, cols, rng), x = random_rows(4, cols, rng);
    for (int nr = 1; nr <= 4; ++nr) {
      const auto panel = w8a8_pack_panels(w.data(), nr, cols);
      ASSERT_EQ(static_cast<int64_t>(panel.size()), w8a8_panel_bytes(cols));
      for (int nt = 1; nt <= 4; ++nt) {
        float want[4][5];
        for (int t = 0; t < nt; ++t) {
          for (int r = 0; r < nr; ++r) {
            const uint8_t *xr = x.data() + t * (4 + cols), *wr = w.data() + r * (4 + cols);
            int64_t sum = 0;  // in 64 bits: the kernels' int32 must not wrap
            for (int64_t i = 0; i < cols; ++i) sum += int64_t{static_cast<int8_t>(xr[4 + i])} * static_cast<int8_t>(wr[4 + i]);
            float ax, aw;
            std::memcpy(&ax, xr, 4);
            std::memcpy(&aw, wr, 4);
            want[t][r] = static_cast<float>(sum) * (ax / 127.0f) * (aw / 127.0f);
          }
        }
        for (const IsaKernels* isa : usable_isas()) {
          if (isa->w8a8_tile == nullptr) continue;
          float got[4][5];
          for (auto& row : got) std::fill(std::begin(row), std::end(row), -1.0f);
          isa->w8a8_tile(x.data(), nt, panel.data(), nr, cols, &got[0][0], 5);
          for (int t = 0; t < 4; ++t) {
            for (int r = 0; r < 5; ++r) {
              if (t < nt && r < nr) {
                EXPECT_EQ(got[t][r], want[t][r]) << isa->name << " cols " << cols << " token " << t << " row " << r;
              } else {
                EXPECT_EQ(got[t][r], -1.0f) << isa->name << " wrote outside the tile: token " << t << " row " << r;
              }
            }
          }
        }
      }
    }
  }
}

// One linear: random activations rounded per token to int8 against bnb_int8 weights, by
// the int8 GEMM, equal the double-precision sum of the decoded values up to float rounding
// of the two scales and the decoded values (a few units in 2^-24 of sum |x w|).
TEST(W8A8, GemmIsTheSumOfTheDecodedValues) {
  std::mt19937 rng(5);
  std::normal_distribution<float> g;
  const int64_t T = 13, rows = 37, cols = 200;
  std::vector<float> x(static_cast<size_t>(T * cols)), wf(static_cast<size_t>(rows * cols));
  for (float& v : x) v = g(rng);
  for (float& v : wf) v = 0.05f * g(rng);
  const Format& int8 = format_by_name("bnb_int8");
  const auto wb = quantize_tensor(int8, wf, rows, cols), xq = quantize_tensor(int8, x, T, cols);
  const Weight w{"w", &int8, rows, cols, wb, nullptr};
  std::vector<float> wd(wf.size()), xd(x.size()), y(static_cast<size_t>(T * rows));
  int8.dequantize(wb.data(), rows, cols, 0, rows, wd.data());
  int8.dequantize(xq.data(), T, cols, 0, T, xd.data());
  for (const IsaKernels* isa : usable_isas()) {
    w8a8_matmul(w8a8_weight_panels(w), rows, cols, xq.data(), T, y.data(), isa->w8a8_tile != nullptr ? isa->w8a8_tile : &w8a8_tile_ref);
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t r = 0; r < rows; ++r) {
        double exact = 0, magnitude = 0;
        for (int64_t i = 0; i < cols; ++i) {
          exact += static_cast<double>(xd[t * cols + i]) * wd[r * cols + i];
          magnitude += std::fabs(static_cast<double>(xd[t * cols + i]) * wd[r * cols + i]);
        }
        EXPECT_NEAR(y[t * rows + r], exact, 8 * 0x1p-24 * magnitude) << isa->name << " token " << t << " row " << r;
      }
    }
  }
}

// In the engine: shakespeare-llama-4m with bnb_int8 block linears and int8 activations
// runs, the activations' rounding shows in the logits, and the fast and the scalar sets
// agree as closely as any two int8-activation paths can (a value on a rounding boundary
// may land one step apart: the bound of EngineKernels.LogitsMatchTheReferenceKernels).
TEST(W8A8, EngineRunsTheInt8Gemm) {
  const Model base = load_model(test::shared_path("models/shakespeare-llama-4m"));
  Model m = base;
  const Format& int8 = format_by_name("bnb_int8");
  for (auto& l : m.layers) {
    for (Weight* w : {&l.attn_q, &l.attn_k, &l.attn_v, &l.attn_output, &l.ffn_gate, &l.ffn_up, &l.ffn_down}) {
      auto bytes = std::make_shared<const std::vector<uint8_t>>(quantize_tensor(int8, w->to_f32(), w->rows, w->cols));
      *w = Weight{w->name, &int8, w->rows, w->cols, *bytes, bytes};
    }
  }
  auto tokens = base.tokenizer->encode(test::read_file(test::shared_path("data/shakespeare-test.txt")), true);
  tokens.resize(48);
  auto logits = [&](const char* act, bool reference) {
    Engine e(m, 48);
    e.set_activation_quant(act_quant_options(act));
    e.use_reference_kernels(reference);
    std::vector<float> out(static_cast<size_t>(48 * m.config.vocab_size));
    e.forward(tokens, 0, out.data());
    return out;
  };
  const auto gemm = logits("int8", false), ref = logits("int8", true), plain = logits("none", false);
  float amax = 0, err = 0, change = 0;
  for (size_t i = 0; i < gemm.size(); ++i) {
    amax = std::max(amax, std::fabs(ref[i]));
    err = std::max(err, std::fabs(gemm[i] - ref[i]));
    change = std::max(change, std::fabs(gemm[i] - plain[i]));
  }
  EXPECT_LE(err, (4.0f * static_cast<float>(m.config.n_layers) + 1) / 254.0f * amax);
  EXPECT_GT(change, 1e-3f * amax);
  EXPECT_THROW(act_quant_options("int4"), Error);
}

// SmoothQuant's scales folded into the norms and the linears leave the float model's
// logits unchanged (written as f32: only float rounding of the divisions and products);
// α changes the weights; into bnb_int8 the model runs as W8A8.
TEST(W8A8, SmoothQuantFoldingKeepsTheFloatModel) {
  const std::string base = test::shared_path("models/shakespeare-llama-4m"), dir = test::temp_dir();
  auto smoothed = [&](const std::string& name, const char* format, const char* alpha) {
    QuantizeOptions o;
    o.input = base;
    o.output = dir + "/" + name;
    o.recipe = std::string("pure:") + format;
    o.method = {"smoothquant", {{"alpha", alpha}}};
    o.calib = test::shared_path("data/shakespeare-calib.txt");
    o.calib_options = {.samples = 8, .length = 128};
    quantize_model(o);
    return load_model(o.output);
  };
  const Model m = load_model(base), a5 = smoothed("a5", "f32", "0.5"), a8 = smoothed("a8", "f32", "0.8");
  auto tokens = m.tokenizer->encode(test::read_file(test::shared_path("data/shakespeare-test.txt")), true);
  tokens.resize(64);
  auto logits = [&](const Model& model, const char* act) {
    Engine e(model, 64);
    e.set_activation_quant(act_quant_options(act));
    std::vector<float> out(static_cast<size_t>(64 * model.config.vocab_size));
    e.forward(tokens, 0, out.data());
    return out;
  };
  const auto want = logits(m, "none");
  float amax = 0;
  for (float v : want) amax = std::max(amax, std::fabs(v));
  for (const Model* s : {&a5, &a8}) {
    const auto got = logits(*s, "none");
    float err = 0;
    for (size_t i = 0; i < got.size(); ++i) err = std::max(err, std::fabs(got[i] - want[i]));
    EXPECT_LE(err, 1e-5f * amax);
  }
  EXPECT_NE(a5.layers[0].attn_norm.to_f32(), m.layers[0].attn_norm.to_f32());
  EXPECT_NE(a5.layers[0].attn_q.to_f32(), a8.layers[0].attn_q.to_f32());
  EXPECT_EQ(a5.layers[0].attn_output.to_f32(), m.layers[0].attn_output.to_f32());  // fed by attention, not a norm
  const Model w8 = smoothed("w8", "bnb_int8", "0.5");
  EXPECT_EQ(w8.layers[0].ffn_up.format->name, std::string_view("bnb_int8"));
  const auto q = logits(w8, "int8");
  float err = 0;
  for (size_t i = 0; i < q.size(); ++i) err = std::max(err, std::fabs(q[i] - want[i]));
  EXPECT_GT(err, 0.0f);
  EXPECT_LT(err, 0.1f * amax);
}

// LLM.int8(): with an infinite threshold no column is an outlier and the result is W8A8's
// bit for bit; with a threshold below every activation every column stays float, and the
// block linears compute the float product with the decoded weights.
TEST(W8A8, LlmInt8DecompositionAtItsLimits) {
  const Model base = load_model(test::shared_path("models/shakespeare-llama-4m"));
  Model m = base, decoded = base;
  const Format& int8 = format_by_name("bnb_int8");
  const Format& f32 = format_by_name("f32");
  for (size_t l = 0; l < m.layers.size(); ++l) {
    for (auto member : {&LayerWeights::attn_q, &LayerWeights::attn_k, &LayerWeights::attn_v, &LayerWeights::attn_output,
                        &LayerWeights::ffn_gate, &LayerWeights::ffn_up, &LayerWeights::ffn_down}) {
      Weight& w = m.layers[l].*member;
      auto bytes = std::make_shared<const std::vector<uint8_t>>(quantize_tensor(int8, w.to_f32(), w.rows, w.cols));
      w = Weight{w.name, &int8, w.rows, w.cols, *bytes, bytes};
      auto values = std::make_shared<const std::vector<uint8_t>>(quantize_tensor(f32, w.to_f32(), w.rows, w.cols));
      decoded.layers[l].*member = Weight{w.name, &f32, w.rows, w.cols, *values, values};
    }
  }
  auto tokens = base.tokenizer->encode(test::read_file(test::shared_path("data/shakespeare-test.txt")), true);
  tokens.resize(40);
  auto run = [&](const Model& model, const ActQuantOptions& act, std::map<std::string, OutlierStats>* stats = nullptr) {
    Engine e(model, 40);
    e.set_activation_quant(act);
    std::vector<float> out(static_cast<size_t>(40 * model.config.vocab_size));
    e.forward(tokens, 0, out.data());
    if (stats) *stats = e.outlier_stats();
    return out;
  };
  std::map<std::string, OutlierStats> none, all;
  EXPECT_EQ(run(m, act_quant_options("llm_int8", 1e30f), &none), run(m, act_quant_options("int8")));
  for (const auto& [name, st] : none) EXPECT_EQ(st.outlier_columns, 0) << name;
  EXPECT_EQ(none.size(), 7 * m.layers.size());
  const auto floats = run(m, act_quant_options("llm_int8", 1e-30f), &all), want = run(decoded, {});
  float amax = 0, err = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    amax = std::max(amax, std::fabs(want[i]));
    err = std::max(err, std::fabs(floats[i] - want[i]));
  }
  EXPECT_LE(err, 1e-4f * amax);
  int64_t outliers = 0, columns = 0;
  for (const auto& [name, st] : all) {
    outliers += st.outlier_columns;
    columns += st.columns;
  }
  EXPECT_GT(outliers, columns * 9 / 10);  // all but the columns that are exactly zero
  EXPECT_THROW(act_quant_options("llm_int8", 0.0f), Error);
}

}  // namespace
}  // namespace lowbit
