// The training engine: every layer's backward against central finite differences on random
// inputs of odd sizes, and the whole model's loss and gradients against PyTorch's
// (../shared/testdata/training/backward.safetensors: shakespeare-llama-4m, 4 windows of 64
// tokens), each within 1e-4 of the largest reference gradient of its tensor.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <random>

#include "lowbit/error.h"
#include "lowbit/format.h"
#include "lowbit/model_io.h"
#include "lowbit/safetensors.h"
#include "lowbit/train.h"
#include "model/layers.h"
#include "test_support.h"
#include "train/train_layers.h"

namespace lowbit {
namespace {

using namespace train;

std::vector<float> randn(size_t n, uint64_t seed, float sigma = 1.0f) { return test::gaussian(n, seed, sigma); }

// Checks d(Σ out · R)/d(input[i]) by central differences at a spread of elements of every
// input: `forward` maps the inputs to out; `backward` gives the analytic gradients of the
// inputs for dout = R (each zeroed before). Differences in double around float math:
// tolerance 2% of the gradient's largest magnitude plus 2e-3.
void check_gradients(std::vector<std::vector<float>*> inputs, const std::function<std::vector<float>()>& forward,
                     const std::function<std::vector<std::vector<float>>(const std::vector<float>& R)>& backward, const std::string& what) {
  const std::vector<float> out0 = forward();
  const std::vector<float> R = randn(out0.size(), 99);
  const auto grads = backward(R);
  auto objective = [&] {
    const auto out = forward();
    double s = 0;
    for (size_t i = 0; i < out.size(); ++i) s += static_cast<double>(out[i]) * R[i];
    return s;
  };
  for (size_t k = 0; k < inputs.size(); ++k) {
    std::vector<float>& x = *inputs[k];
    float gmax = 0;
    for (float g : grads[k]) gmax = std::max(gmax, std::fabs(g));
    for (size_t i = 0; i < x.size(); i += std::max<size_t>(1, x.size() / 37)) {
      const float keep = x[i], h = 1e-2f * std::max(1.0f, std::fabs(keep));
      x[i] = keep + h;
      const double up = objective();
      x[i] = keep - h;
      const double down = objective();
      x[i] = keep;
      const double numeric = (up - down) / (2.0 * h);
      EXPECT_NEAR(grads[k][i], numeric, 0.02 * gmax + 2e-3) << what << " input " << k << " element " << i;
    }
  }
}

TEST(TrainLayers, RmsnormMatmulSwigluAgainstFiniteDifferences) {
  const int64_t N = 5, C = 19, OC = 7;
  std::vector<float> x = randn(N * C, 1), w = randn(C, 2), wm = randn(OC * C, 3, 0.3f);
  check_gradients({&x, &w}, [&] {
    std::vector<float> out(N * C), rstd(N);
    rmsnorm_forward(out.data(), rstd.data(), x.data(), w.data(), N, C, 1e-5f);
    return out;
  }, [&](const std::vector<float>& R) {
    std::vector<float> out(N * C), rstd(N), dx(N * C, 0.0f), dw(C, 0.0f);
    rmsnorm_forward(out.data(), rstd.data(), x.data(), w.data(), N, C, 1e-5f);
    rmsnorm_backward(dx.data(), dw.data(), R.data(), x.data(), w.data(), rstd.data(), N, C);
    return std::vector<std::vector<float>>{dx, dw};
  }, "rmsnorm");
  check_gradients({&x, &wm}, [&] {
    std::vector<float> out(N * OC);
    matmul_forward(out.data(), x.data(), wm.data(), N, C, OC);
    return out;
  }, [&](const std::vector<float>& R) {
    std::vector<float> dx(N * C, 0.0f), dw(OC * C, 0.0f);
    matmul_backward(dx.data(), dw.data(), R.data(), x.data(), wm.data(), N, C, OC);
    return std::vector<std::vector<float>>{dx, dw};
  }, "matmul");
  std::vector<float> g = randn(N * C, 4, 2.0f), u = randn(N * C, 5);
  check_gradients({&g, &u}, [&] {
    std::vector<float> out(N * C);
    swiglu_forward(out.data(), g.data(), u.data(), N * C);
    return out;
  }, [&](const std::vector<float>& R) {
    std::vector<float> dg(N * C, 0.0f), du(N * C, 0.0f);
    swiglu_backward(dg.data(), du.data(), R.data(), g.data(), u.data(), N * C);
    return std::vector<std::vector<float>>{dg, du};
  }, "swiglu");
}

TEST(TrainLayers, RopeAttentionCrossEntropyDistillationAgainstFiniteDifferences) {
  const int64_t B = 2, T = 7, H = 6, KVH = 2, hd = 10;
  const RopeTable table(T, hd, 10000.0f);
  for (RopeStyle style : {RopeStyle::kRotateHalf, RopeStyle::kAdjacentPairs}) {
    std::vector<float> x = randn(B * T * H * hd, 6);
    check_gradients({&x}, [&] {
      std::vector<float> out = x;
      rope_forward(out.data(), B, T, H, hd, style, table.cos.data(), table.sin.data());
      return out;
    }, [&](const std::vector<float>& R) {
      std::vector<float> dx = R;
      rope_backward(dx.data(), B, T, H, hd, style, table.cos.data(), table.sin.data());
      return std::vector<std::vector<float>>{dx};
    }, "rope");
  }
  std::vector<float> q = randn(B * T * H * hd, 7), k = randn(B * T * KVH * hd, 8), v = randn(B * T * KVH * hd, 9);
  check_gradients({&q, &k, &v}, [&] {
    std::vector<float> out(B * T * H * hd), probs(B * H * T * T);
    attention_forward(out.data(), probs.data(), q.data(), k.data(), v.data(), B, T, H, KVH, hd);
    return out;
  }, [&](const std::vector<float>& R) {
    std::vector<float> out(B * T * H * hd), probs(B * H * T * T), dq(q.size(), 0.0f), dk(k.size(), 0.0f), dv(v.size(), 0.0f);
    attention_forward(out.data(), probs.data(), q.data(), k.data(), v.data(), B, T, H, KVH, hd);
    attention_backward(dq.data(), dk.data(), dv.data(), R.data(), probs.data(), q.data(), k.data(), v.data(), B, T, H, KVH, hd);
    return std::vector<std::vector<float>>{dq, dk, dv};
  }, "attention");
  const int64_t N = 9, V = 13;
  std::vector<float> logits = randn(N * V, 10, 2.0f);
  std::vector<int32_t> targets(N);
  for (int64_t n = 0; n < N; ++n) targets[n] = static_cast<int32_t>((n * 5) % V);
  check_gradients({&logits}, [&] {
    std::vector<float> probs(N * V);
    return std::vector<float>{crossentropy_forward(probs.data(), logits.data(), targets.data(), N, V)};
  }, [&](const std::vector<float>& R) {
    std::vector<float> probs(N * V), d(N * V);
    crossentropy_forward(probs.data(), logits.data(), targets.data(), N, V);
    crossentropy_backward(d.data(), probs.data(), targets.data(), N, V, R[0]);
    return std::vector<std::vector<float>>{d};
  }, "cross-entropy");
  // Distillation: KL(teacher ‖ model) against the definition in double, and its gradient.
  const std::vector<float> teacher_logits = randn(N * V, 13, 2.0f);
  check_gradients({&logits}, [&] {
    std::vector<float> probs(N * V), t = teacher_logits;
    return std::vector<float>{distill_forward(probs.data(), t.data(), logits.data(), N, V)};
  }, [&](const std::vector<float>& R) {
    std::vector<float> probs(N * V), t = teacher_logits, d(N * V);
    distill_forward(probs.data(), t.data(), logits.data(), N, V);
    distill_backward(d.data(), probs.data(), t.data(), N, V, R[0]);
    return std::vector<std::vector<float>>{d};
  }, "distillation");
  {
    auto log_softmax = [&](const float* l, int64_t i) {
      double sum = 0;
      for (int64_t j = 0; j < V; ++j) sum += std::exp(static_cast<double>(l[j]));
      return l[i] - std::log(sum);
    };
    double kl = 0;
    for (int64_t n = 0; n < N; ++n) {
      for (int64_t i = 0; i < V; ++i) {
        const double lt = log_softmax(teacher_logits.data() + n * V, i), ls = log_softmax(logits.data() + n * V, i);
        kl += std::exp(lt) * (lt - ls) / static_cast<double>(N);
      }
    }
    std::vector<float> probs(N * V), t = teacher_logits, same = logits;
    EXPECT_NEAR(distill_forward(probs.data(), t.data(), logits.data(), N, V), kl, 1e-6 * kl);
    EXPECT_NEAR(distill_forward(probs.data(), same.data(), logits.data(), N, V), 0.0, 1e-6);  // a model against itself
  }
  std::vector<float> wte = randn(V * 4, 11), dwte(V * 4, 0.0f), dout = randn(N * 4, 12);
  embedding_backward(dwte.data(), dout.data(), targets.data(), N, 4);
  std::vector<float> want(V * 4, 0.0f);
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t c = 0; c < 4; ++c) want[targets[n] * 4 + c] += dout[n * 4 + c];
  }
  EXPECT_EQ(dwte, want);
}

TEST(TrainModel, LossAndGradientsMatchPyTorch) {
  const SafetensorsFile ref(test::shared_path("testdata/training/backward.safetensors"));
  const Model m = load_model(test::shared_path("models/shakespeare-llama-4m"));
  TrainModel tm(m);
  const TensorView& tok = ref.tensor("tokens");
  ASSERT_EQ(tok.shape, (std::vector<int64_t>{4, 65}));
  std::vector<int32_t> tokens(4 * 65);
  std::memcpy(tokens.data(), tok.data.data(), tokens.size() * 4);
  const float loss = tm.forward_backward(tokens, 4, 64);
  EXPECT_NEAR(loss, ref.to_f32(ref.tensor("loss"))[0], 1e-5 * 3.63) << "loss";
  int checked = 0;
  for (const TensorView& t : ref.tensors()) {
    if (!t.name.starts_with("grad.")) continue;
    const std::vector<float> want = ref.to_f32(t);
    const TrainTensor& p = tm.param(t.name.substr(5));
    ASSERT_EQ(p.grad.size(), want.size()) << t.name;
    float amax = 0, err = 0;
    for (size_t i = 0; i < want.size(); ++i) {
      amax = std::max(amax, std::fabs(want[i]));
      err = std::max(err, std::fabs(p.grad[i] - want[i]));
    }
    EXPECT_LE(err, 1e-4f * amax) << t.name << " max |ref| " << amax;
    ++checked;
  }
  EXPECT_EQ(checked, static_cast<int>(tm.params().size()));
  // The loss alone is the same number; a second pass adds the same gradients again.
  EXPECT_FLOAT_EQ(tm.loss(tokens, 4, 64), loss);
  EXPECT_THROW(tm.loss(std::span(tokens).first(100), 4, 64), Error);
}

// The batch every oracle file holds: tokens I32 [4, 65].
std::vector<int32_t> oracle_tokens(const SafetensorsFile& ref) {
  const TensorView& tok = ref.tensor("tokens");
  EXPECT_EQ(tok.shape, (std::vector<int64_t>{4, 65}));
  std::vector<int32_t> tokens(4 * 65);
  std::memcpy(tokens.data(), tok.data.data(), tokens.size() * 4);
  return tokens;
}

// max |got − want| ≤ tol · max |want| over the tensor.
void expect_close(const std::vector<float>& got, const std::vector<float>& want, float tol, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  float amax = 0, err = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    amax = std::max(amax, std::fabs(want[i]));
    err = std::max(err, std::fabs(got[i] - want[i]));
  }
  EXPECT_LE(err, tol * amax) << what << ": max |diff| " << err << ", max |ref| " << amax;
}

const char* const kModules[] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"};

// QAT (qat_int4_g128.safetensors): int4 groups of 128, asymmetric min/max, straight-through
// rounding; scales and zero points from the same rule, and the loss, the weights' and the
// scales' gradients as PyTorch's.
TEST(TrainModel, FakeQuantGradientsMatchPyTorch) {
  const SafetensorsFile ref(test::shared_path("testdata/training/qat_int4_g128.safetensors"));
  TrainModel tm(load_model(test::shared_path("models/shakespeare-llama-4m")));
  tm.add_fake_quant({.bits = 4, .group = 128});
  const auto tokens = oracle_tokens(ref);
  const float loss = tm.forward_backward(tokens, 4, 64);
  EXPECT_NEAR(loss, ref.to_f32(ref.tensor("loss"))[0], 1e-5 * 4);
  for (int l = 0; l < 4; ++l) {
    for (const char* mod : kModules) {
      const std::string module = "model.layers." + std::to_string(l) + "." + mod;
      EXPECT_EQ(tm.param("scale." + module).value, ref.to_f32(ref.tensor("scale." + module))) << module;
      EXPECT_EQ(tm.param("zero." + module).value, ref.to_f32(ref.tensor("zero." + module))) << module;
      expect_close(tm.param(module + ".weight").grad, ref.to_f32(ref.tensor("grad." + module + ".weight")), 1e-4f, "grad " + module);
      expect_close(tm.param("scale." + module).grad, ref.to_f32(ref.tensor("grad.scale." + module)), 1e-4f, "scale grad " + module);
    }
  }
  EXPECT_THROW(tm.add_fake_quant({.bits = 4, .group = 100}), Error);  // 100 does not divide 256
}

// QLoRA (qlora_nf4_r8.safetensors): lowbit's NF4 of the base is the reference's; LoRA
// r 8, alpha 16 on every decoder linear from the given A and B; the adapters' gradients,
// three AdamW steps and the four losses as PyTorch's.
TEST(TrainModel, QloraStepsMatchPyTorch) {
  const SafetensorsFile ref(test::shared_path("testdata/training/qlora_nf4_r8.safetensors"));
  const Model m = load_model(test::shared_path("models/shakespeare-llama-4m"));
  TrainModel tm(m);
  const Format& nf4 = format_by_name("nf4");
  for (int l = 0; l < 4; ++l) {
    for (const char* mod : kModules) {
      const std::string name = "model.layers." + std::to_string(l) + "." + mod + ".weight";
      TrainTensor& w = tm.param(name);
      const auto want = ref.to_f32(ref.tensor("nf4_dequantized." + name));
      std::vector<float> got(w.value.size());
      nf4.dequantize(quantize_tensor(nf4, w.value, w.rows, w.cols).data(), w.rows, w.cols, 0, w.rows, got.data());
      ASSERT_EQ(got, want) << "NF4 of " << name;
      w.value = want;
    }
  }
  tm.add_lora({.rank = 8, .alpha = 16}, [&](TrainTensor& a, TrainTensor& b) {
    a.value = ref.to_f32(ref.tensor(a.name));
    b.value = ref.to_f32(ref.tensor(b.name));
  });
  for (const TrainTensor& t : tm.params()) EXPECT_EQ(t.trainable, t.name.starts_with("lora_")) << t.name;
  const auto tokens = oracle_tokens(ref);
  const std::vector<float> losses = ref.to_f32(ref.tensor("loss_steps"));
  AdamW opt({.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.01f});
  for (int step = 0; step < 3; ++step) {
    tm.zero_grad();
    const float loss = tm.forward_backward(tokens, 4, 64);
    EXPECT_NEAR(loss, losses[step], 1e-4 * losses[step]) << "step " << step;
    if (step == 0) {
      for (const TrainTensor& t : tm.params()) {
        if (t.trainable) expect_close(t.grad, ref.to_f32(ref.tensor("grad." + t.name)), 1e-4f, "grad " + t.name);
      }
    }
    opt.step(tm.params());
  }
  EXPECT_NEAR(tm.loss(tokens, 4, 64), losses[3], 1e-4 * losses[3]) << "after step 3";
  // The adapters after 3 steps: within 1e-4 of the tensor's largest value, plus what the
  // tested gradient tolerance (δ = 1e-4 · max |g|) can move AdamW's normalized step
  // m̂ / sqrt(v̂): about 2δ / |g| per step for an element of gradient g, at most a full swing
  // of 2 — so 3 steps of lr allow 3 · lr · min(2, 2δ / |g|). Elements whose gradient is
  // within float noise of zero may take either sign; the rest must agree closely.
  int adapters = 0;
  int64_t elements = 0, loose = 0;
  for (const TrainTensor& t : tm.params()) {
    if (!t.trainable) {
      EXPECT_TRUE(std::all_of(t.grad.begin(), t.grad.end(), [](float g) { return g == 0.0f; })) << "frozen " << t.name;
      continue;
    }
    const auto want = ref.to_f32(ref.tensor("after3." + t.name)), g0 = ref.to_f32(ref.tensor("grad." + t.name));
    float amax = 0, gmax = 0;
    for (size_t i = 0; i < want.size(); ++i) {
      amax = std::max(amax, std::fabs(want[i]));
      gmax = std::max(gmax, std::fabs(g0[i]));
    }
    for (size_t i = 0; i < want.size(); ++i) {
      const float swing = std::min(2.0f, 2.0f * 1e-4f * gmax / std::max(std::fabs(g0[i]), 1e-30f));
      const float tol = 1e-4f * amax + 3.0f * 1e-3f * swing;
      loose += swing >= 1.0f;  // practically unconstrained
      ++elements;
      ASSERT_LE(std::fabs(t.value[i] - want[i]), tol) << "after 3 steps " << t.name << " element " << i << " (gradient " << g0[i] << ")";
    }
    ++adapters;
  }
  EXPECT_LT(loose, elements / 100) << "elements with near-zero gradients";
  EXPECT_EQ(adapters, 56);
  EXPECT_THROW(tm.add_lora({.rank = 0}), Error);
}

}  // namespace
}  // namespace lowbit
