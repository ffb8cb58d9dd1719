// Quantization-aware training on shakespeare-llama-4m: activation checkpointing gives the
// same gradients; the scales' gradient with frozen codes (E2E-QP) matches finite
// differences; the exported model (in memory, as a folder and as GGUF) computes exactly
// the fake-quantized forward, for an affine grid and for formats with their own quantizer;
// Block-AP lowers every block's output error; EfficientQAT beats the best post-training
// method's KLD at int2_g64 by a wide margin; bad input is refused.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "io/checkpoints/checkpoint_layout.h"
#include "lowbit/error.h"
#include "lowbit/engine.h"
#include "lowbit/format.h"
#include "lowbit/model_io.h"
#include "lowbit/perplexity.h"
#include "lowbit/qat.h"
#include "lowbit/quantize.h"
#include "lowbit/train.h"
#include "test_support.h"

namespace lowbit {
namespace {

const char* kModel = "models/shakespeare-llama-4m";

// B windows of T + 1 tokens of shakespeare-test, back to back.
std::vector<int32_t> windows(const Model& m, int64_t B, int64_t T) {
  auto t = m.tokenizer->encode(test::read_file(test::shared_path("data/shakespeare-test.txt")), true);
  t.resize(static_cast<size_t>(B * (T + 1)));
  return t;
}

std::vector<int32_t> calib_tokens(const Model& m) {
  return m.tokenizer->encode(test::read_file(test::shared_path("data/shakespeare-calib.txt")), true);
}

// A few AdamW steps on everything but the fixed zero points, so the weights and scales
// leave their round-to-nearest start.
void perturb(TrainModel& tm, const std::vector<int32_t>& batch, int64_t B, int64_t T) {
  tm.set_trainable([](const TrainTensor& t) { return !t.name.starts_with("zero."); });
  AdamW opt({.lr = 2e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.0f});
  for (int s = 0; s < 3; ++s) {
    tm.zero_grad();
    tm.forward_backward(batch, B, T);
    opt.step(tm.params());
  }
}

// EfficientQAT into int2_g64_asym: Block-AP as given, then `steps` E2E-QP steps of B × T.
QatOptions int2_qat(const BlockApOptions& block_ap, int64_t steps, int64_t B, int64_t T) {
  QatOptions o;
  o.format = &format_by_name("int2_g64_asym");
  o.block_ap = block_ap;
  o.train.steps = steps;
  o.train.batch = B;
  o.train.seq_len = T;
  o.train.warmup = std::max<int64_t>(1, steps / 15);
  o.train.adamw.lr = 1e-4f;
  return o;
}

TEST(Qat, CheckpointingGivesTheSameGradients) {
  const Model m = load_model(test::shared_path(kModel));
  const auto batch = windows(m, 2, 48);
  TrainModel plain(m), checkpointed(m);
  checkpointed.set_checkpointing(true);
  for (TrainModel* tm : {&plain, &checkpointed}) tm->add_fake_quant({.bits = 3, .group = 64});
  const float a = plain.forward_backward(batch, 2, 48), b = checkpointed.forward_backward(batch, 2, 48);
  EXPECT_EQ(a, b);
  // The recomputed forward is the same arithmetic on the same inputs: equal bits.
  for (size_t k = 0; k < plain.params().size(); ++k) {
    ASSERT_EQ(plain.params()[k].grad, checkpointed.params()[k].grad) << plain.params()[k].name;
  }
}

TEST(Qat, FrozenCodesTrainScalesWithTheirExactGradient) {
  const Model m = load_model(test::shared_path(kModel));
  const auto batch = windows(m, 2, 32);
  TrainModel tm(m);
  tm.add_fake_quant({.bits = 3, .group = 64});
  tm.freeze_codes();
  tm.set_trainable([](const TrainTensor& t) { return t.name.starts_with("scale."); });
  const std::vector<float> codes = tm.param("model.layers.1.mlp.up_proj.weight").value;
  for (float q : codes) ASSERT_TRUE(q == std::nearbyint(q) && q >= 0 && q <= 7);
  tm.zero_grad();
  tm.forward_backward(batch, 2, 32);
  // With the codes fixed, the loss is smooth in each scale: w_q = s (q − z).
  for (const char* name : {"scale.model.layers.1.mlp.up_proj", "scale.model.layers.3.self_attn.k_proj"}) {
    TrainTensor& s = tm.param(name);
    float gmax = 0;
    for (float g : s.grad) gmax = std::max(gmax, std::fabs(g));
    ASSERT_GT(gmax, 0.0f) << name;
    for (size_t i = 0; i < s.value.size(); i += s.value.size() / 7) {
      const float keep = s.value[i], h = 0.05f * keep;
      s.value[i] = keep + h;
      const double up = tm.loss(batch, 2, 32);
      s.value[i] = keep - h;
      const double down = tm.loss(batch, 2, 32);
      s.value[i] = keep;
      // float32 loss differences over 2h, plus the h² term: 2% of the largest gradient.
      EXPECT_NEAR(s.grad[i], (up - down) / (2.0 * h), 0.02 * gmax) << name << " element " << i;
    }
  }
  AdamW opt({.lr = 1e-3f});
  opt.step(tm.params());
  EXPECT_EQ(tm.param("model.layers.1.mlp.up_proj.weight").value, codes);  // codes never train
}

// The exported model in memory, as plain f32 training model, computes the fake-quantized
// loss: the same weight values in the same arithmetic.
float exported_loss(const std::string& path, TrainModel& tm, const std::vector<int32_t>& batch, const Format& f) {
  Model out = load_model(path);
  tm.export_to(out);
  for (const LayerWeights& l : out.layers) EXPECT_EQ(l.ffn_down.format, &f);
  return TrainModel(out).loss(batch, 2, 32);
}

TEST(Qat, ExportedModelComputesTheFakeQuantizedForward) {
  const Model m = load_model(test::shared_path(kModel));
  const auto batch = windows(m, 2, 32);
  for (const char* name : {"int3_g64_asym", "int4_g128_sym", "int2_pc_asym", "q4_k", "nf4", "q4_0"}) {
    SCOPED_TRACE(name);
    const Format& f = format_by_name(name);
    TrainModel tm(m);
    FakeQuantOptions fq = fake_quant_for(f);
    fq.train_zero = !fq.sym && fq.format == nullptr;
    tm.add_fake_quant(fq);
    EXPECT_EQ(fq.format != nullptr, !int_format_shape(f).has_value());
    perturb(tm, batch, 2, 32);
    const float trained = tm.loss(batch, 2, 32);
    EXPECT_NEAR(exported_loss(test::shared_path(kModel), tm, batch, f), trained, 1e-6f * trained);
    if (fq.format == nullptr) {  // E2E-QP's frozen codes export the same way
      tm.freeze_codes();
      EXPECT_NEAR(exported_loss(test::shared_path(kModel), tm, batch, f), trained, 1e-6f * trained);
    }
  }
}

TEST(Qat, WrittenFilesHoldTheTrainedModel) {
  const std::string dir = test::temp_dir();
  const Model m = load_model(test::shared_path(kModel));
  const auto batch = windows(m, 2, 32);
  // int3 groups (a folder) and q4_0 (GGUF: q/k rows reordered in their bytes, not requantized).
  for (const char* name : {"int3_g64_asym", "q4_0"}) {
    SCOPED_TRACE(name);
    TrainModel tm(m);
    tm.add_fake_quant(fake_quant_for(format_by_name(name)));
    perturb(tm, batch, 2, 32);
    // Only the linears are compared: token_embd and output stay f32 here.
    QuantizeOptions q;
    q.input = test::shared_path(kModel);
    q.output = dir + "/" + name + (std::string(name) == "q4_0" ? ".gguf" : "");
    q.recipe_data = Recipe{"qat", "", "keep", {}};
    q.transform = [&](Model& model) { tm.export_to(model); };
    quantize_model(q);
    const Model written = load_model(q.output);
    EXPECT_EQ(written.layers[2].attn_k.format->name, std::string_view(name));
    const float trained = tm.loss(batch, 2, 32);
    EXPECT_NEAR(TrainModel(written).loss(batch, 2, 32), trained, 1e-6f * trained);
  }
}

TEST(Qat, BlockApLowersEveryBlocksOutputError) {
  const Model m = load_model(test::shared_path(kModel));
  TrainModel tm(m);
  const QatOptions o = int2_qat({.samples = 16, .seq_len = 64, .epochs = 4, .batch = 2}, 4, 2, 32);
  const QatReport r = quantization_aware_training(tm, calib_tokens(m), o);
  ASSERT_EQ(r.block_mse_rtn.size(), 4u);
  for (size_t l = 0; l < 4; ++l) EXPECT_LT(r.block_mse_trained[l], 0.8f * r.block_mse_rtn[l]) << "block " << l;
  ASSERT_EQ(r.train.losses.size(), 4u);
  for (const TrainTensor& t : tm.params()) EXPECT_EQ(t.trainable, t.name.starts_with("scale.")) << t.name;  // E2E-QP: scales only
}

TEST(Qat, BadInputIsRefused) {
  const Model m = load_model(test::shared_path(kModel));
  const auto tokens = calib_tokens(m);
  TrainModel tm(m);
  QatOptions o;
  o.format = &format_by_name("q4_k");
  EXPECT_THROW(
      try { quantization_aware_training(tm, tokens, o); } catch (const Error& e) {
        EXPECT_NE(e.message().find("--method ste"), std::string::npos) << e.what();
        throw;
      },
      Error);
  o.method = "lsq";
  EXPECT_THROW(quantization_aware_training(tm, tokens, o), Error);
  o.method = "efficientqat";
  o.format = &format_by_name("int3_g64_asym");
  o.train.source = "short.txt";
  EXPECT_THROW(
      try { quantization_aware_training(tm, std::vector<int32_t>(10, 1), o); } catch (const Error& e) {
        EXPECT_EQ(e.context().file, "short.txt");
        throw;
      },
      Error);
  EXPECT_THROW(fake_quant_for(format_by_name("bf16")), Error);
}

// EfficientQAT at a small budget against GPTQ and AWQ + GPTQ at int2_g64_asym (the best
// post-training methods there, docs/PERF.md), KLD on shakespeare-test.
TEST(Qat, EfficientQatBeatsPostTrainingAtTwoBits) {
  const std::string dir = test::temp_dir();
  const Model base = load_model(test::shared_path(kModel));
  auto tokens = base.tokenizer->encode(test::read_file(test::shared_path("data/shakespeare-test.txt")), true);
  tokens.resize(2048);
  PerplexityOptions p = test::kld_against(base, tokens, 256, dir);
  const Recipe recipe{"int2", "", "int2_g64_asym", {{"token_embd", "", "f16", "", "", {}}, {"output", "", "f16", "", "", {}}}};
  auto kld = [&](const std::string& name, const std::function<void(QuantizeOptions&)>& set) {
    QuantizeOptions o;
    o.input = test::shared_path(kModel);
    o.output = dir + "/" + name;
    o.recipe_data = recipe;
    set(o);
    quantize_model(o);
    return compute_perplexity(load_model(o.output), tokens, p).kld->mean;
  };
  auto calibrated = [&](const char* method, bool gptq) {
    return [=](QuantizeOptions& o) {
      o.calib = test::shared_path("data/shakespeare-calib.txt");
      o.calib_options = {.samples = 64, .length = 256, .seed = 0};
      o.method.name = method;
      if (gptq && std::string(method) == "awq") o.method.options = {{"gptq", "true"}};
    };
  };
  const double gptq = kld("gptq", calibrated("gptq", false)), awq_gptq = kld("awq-gptq", calibrated("awq", true));
  const double eqat = kld("eqat", [&](QuantizeOptions& o) {
    o.recipe_data->base = "keep";
    o.transform = [&](Model& model) {
      TrainModel tm(model);
      Engine teacher(model, 64);
      QatOptions q = int2_qat({.samples = 64, .seq_len = 128, .epochs = 4, .batch = 2}, 60, 4, 64);
      q.train.teacher = [&](std::span<const int32_t> in, int64_t B, int64_t T, float* logits) {
        for (int64_t b = 0; b < B; ++b) teacher.forward(in.subspan(b * T, T), 0, logits + b * T * model.config.vocab_size);
      };
      quantization_aware_training(tm, calib_tokens(model), q);
      tm.export_to(model);
    };
  });
  std::printf("int2_g64_asym KLD: EfficientQAT %.5f, GPTQ %.5f, AWQ + GPTQ %.5f\n", eqat, gptq, awq_gptq);
  EXPECT_LT(eqat, 0.7 * std::min(gptq, awq_gptq)) << "EfficientQAT " << eqat << ", GPTQ " << gptq << ", AWQ + GPTQ " << awq_gptq;
}

}  // namespace
}  // namespace lowbit
