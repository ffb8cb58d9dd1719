// The quantized KV cache against its scalar reference: each row decodes to exactly what
// the format's own quantize/dequantize give (rotated: H · deq(q(H · x)) with H the dense
// orthonormal Sylvester-Hadamard matrix); head sizes a format cannot hold are refused; and
// on a real model a q8_0 cache costs almost nothing next to q4_k_m weights, while the
// rotation lowers a q4_0 cache's KL-divergence.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "lowbit/engine.h"
#include "lowbit/error.h"
#include "lowbit/model_io.h"
#include "lowbit/perplexity.h"
#include "model/kv_cache.h"
#include "test_support.h"

namespace lowbit {
namespace {

// The orthonormal Hadamard matrix of size n (a power of two), by Sylvester's doubling.
std::vector<double> hadamard_matrix(int64_t n) {
  std::vector<double> h{1.0};
  for (int64_t m = 1; m < n; m *= 2) {
    std::vector<double> g(static_cast<size_t>(4 * m * m));
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < m; ++j) {
        const double v = h[i * m + j];
        g[i * 2 * m + j] = v;
        g[i * 2 * m + j + m] = v;
        g[(i + m) * 2 * m + j] = v;
        g[(i + m) * 2 * m + j + m] = -v;
      }
    }
    h = std::move(g);
  }
  for (double& v : h) v /= std::sqrt(static_cast<double>(n));
  return h;
}

// Each `block` of each row of x: (n, hd) times the dense matrix.
std::vector<float> rotate_dense(const std::vector<float>& x, int64_t n, int64_t hd, int64_t block) {
  const std::vector<double> h = hadamard_matrix(block);
  std::vector<float> out(x.size());
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t b0 = 0; b0 < hd; b0 += block) {
      for (int64_t i = 0; i < block; ++i) {
        double acc = 0;
        for (int64_t j = 0; j < block; ++j) acc += h[i * block + j] * x[r * hd + b0 + j];
        out[r * hd + b0 + i] = static_cast<float>(acc);
      }
    }
  }
  return out;
}

TEST(KvCache, HadamardIsTheDenseOrthonormalTransform) {
  std::mt19937 rng(3);
  std::normal_distribution<float> g;
  for (int64_t block : {1, 2, 8, 32, 64}) {
    std::vector<float> x(static_cast<size_t>(3 * 64));
    for (float& v : x) v = g(rng);
    std::vector<float> y = x;
    hadamard_rows(y.data(), 3, 64, block);
    const auto want = rotate_dense(x, 3, 64, block);
    for (size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(y[i], want[i], 1e-5f) << block;
    hadamard_rows(y.data(), 3, 64, block);  // its own inverse
    for (size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(y[i], x[i], 1e-5f) << block;
  }
}

// Rows stored at positions [5, 5 + T) of 2 KV heads, read back from position 3 on (two
// rows nobody wrote, zeros, first), for every type, rotated or not, head sizes 64 and 96
// (whose rotation works on blocks of 32): bit for bit the format's round trip.
TEST(KvCache, RowsDecodeAsTheFormatReference) {
  std::mt19937 rng(7);
  std::student_t_distribution<float> heavy(3.0f);  // keys have outlier channels
  for (int64_t hd : {64, 96}) {
    for (const char* type : {"f32", "f16", "bf16", "q8_0", "q4_0", "int8", "fp8_e4m3", "fp8_e5m2"}) {
      for (bool rotate : {false, true}) {
        const KvCacheOptions o = kv_cache_options(type, rotate);
        const int64_t heads = 2, T = 9, ctx = 16, pos = 5;
        KvCache cache(2, ctx, heads, hd, o);
        std::vector<float> k(static_cast<size_t>(T * heads * hd)), v(k.size());
        for (float& x : k) x = 3.0f * heavy(rng);
        for (float& x : v) x = heavy(rng);
        cache.store(1, pos, k.data(), v.data(), T);
        const int64_t block = hd & -hd;
        for (int64_t h = 0; h < heads; ++h) {
          for (const auto& [src, is_key] : {std::pair{&k, true}, std::pair{&v, false}}) {
            std::vector<float> rows(static_cast<size_t>(T * hd));
            for (int64_t t = 0; t < T; ++t) std::copy_n(src->data() + (t * heads + h) * hd, hd, rows.data() + t * hd);
            // The rotation by hadamard_rows, which the test above holds to the dense matrix.
            if (rotate) hadamard_rows(rows.data(), T, hd, block);
            std::vector<float> want(rows.size());
            o.format->dequantize(quantize_tensor(*o.format, rows, T, hd).data(), T, hd, 0, T, want.data());
            if (rotate) hadamard_rows(want.data(), T, hd, block);
            std::vector<float> scratch;
            const float* got = is_key ? cache.keys(1, h, pos - 2, T + 2, scratch) : cache.values(1, h, pos - 2, T + 2, scratch);
            for (int64_t i = 0; i < 2 * hd; ++i) ASSERT_EQ(got[i], 0.0f) << type;
            for (size_t i = 0; i < want.size(); ++i) {
              ASSERT_EQ(got[2 * hd + i], want[i]) << type << (rotate ? " rotated" : "") << " head size " << hd << " element " << i;
            }
          }
        }
        EXPECT_EQ(cache.bytes_per_token(), 2u * 2u * heads * format_row_bytes(*o.format, hd)) << type;
      }
    }
  }
}

TEST(KvCache, TypesThatDoNotFitTheHeadAreRefused) {
  EXPECT_THROW(kv_cache_options("q3", false), Error);
  const Model m = load_model(test::shared_path("models/stories260K/stories260K.bin"),
                             {.tokenizer_path = test::shared_path("models/stories260K/tok512.bin")});  // head size 8
  try {
    Engine(m, 16, kv_cache_options("q4_0", false));
    ADD_FAILURE() << "a q4_0 cache with head size 8 was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("q4_0"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("8 values"), std::string::npos) << e.what();
  }
  Engine(m, 16, kv_cache_options("int8", true));  // per-row types fit any head
}

// On shakespeare-llama-4m (head size 64, context 256): prefill and one-token decode read
// the same quantized rows; a q8_0 cache next to q4_k_m weights stays within 10% of the
// f16 cache's KL-divergence; a rotated q4_0 cache is closer to the base than a plain one.
TEST(KvCache, QualityOnARealModel) {
  const std::string path = test::shared_path("models/shakespeare-llama-4m");
  const Model base = load_model(path);
  const auto tokens = base.tokenizer->encode(test::read_file(test::shared_path("data/shakespeare-test.txt")), true);
  {
    const std::span<const int32_t> first(tokens.data(), 40);
    const int64_t vocab = base.config.vocab_size;
    std::vector<float> a(40 * vocab), b(40 * vocab);
    Engine prefill(base, 40, kv_cache_options("q4_0", true)), decode(base, 40, kv_cache_options("q4_0", true));
    prefill.forward(first, 0, a.data());
    for (int64_t t = 0; t < 40; ++t) decode.forward(first.subspan(t, 1), t, b.data() + t * vocab);
    float amax = 0, err = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      amax = std::max(amax, std::fabs(a[i]));
      err = std::max(err, std::fabs(a[i] - b[i]));
    }
    EXPECT_LE(err, 1e-4f * amax);
  }
  const std::string dir = test::temp_dir();
  PerplexityOptions p = test::kld_against(base, tokens, 256, dir);
  auto kld = [&](const Model& m, const char* type, bool rotate) {
    p.kv = kv_cache_options(type, rotate);
    return compute_perplexity(m, tokens, p).kld->mean;
  };
  const Model q4km = convert_weights(base, format_by_name("q4_k"));
  const double f16 = kld(q4km, "f16", false), q8 = kld(q4km, "q8_0", false);
  std::printf("q4_k weights: KLD with an f16 cache %.6f, q8_0 cache %.6f\n", f16, q8);
  EXPECT_LE(q8, 1.1 * f16);
  const double plain = kld(base, "q4_0", false), rotated = kld(base, "q4_0", true);
  std::printf("f32 weights: KLD with a q4_0 cache %.6f, rotated %.6f\n", plain, rotated);
  EXPECT_LT(rotated, plain);
}

}  // namespace
}  // namespace lowbit
