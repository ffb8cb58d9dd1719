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

TEST(TrainLayers, RopeAttentionCrossEntropyAgainstFiniteDifferences) {
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

}  // namespace
}  // namespace lowbit
