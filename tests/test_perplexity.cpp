// Tokenization of whole evaluation texts against the reference tokens, and perplexity with
// llama.cpp's method against the recorded figures (../shared/testdata/tokens). Also KLD:
// a model against its own saved logits gives KLD ~ 0 and full top-1 agreement.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "lowbit/error.h"
#include "lowbit/model_io.h"
#include "lowbit/perplexity.h"
#include "lowbit/safetensors.h"
#include "test_support.h"

namespace lowbit {
namespace {

std::vector<int32_t> reference_tokens(const std::string& name) {
  const SafetensorsFile f(test::shared_path("testdata/tokens/" + name + ".safetensors"));
  const auto& t = f.tensor("tokens");
  std::vector<int32_t> ids(t.numel());
  std::memcpy(ids.data(), t.data.data(), t.data.size());
  return ids;
}

TEST(Perplexity, Stories260KTokensAndPerplexity) {
  const Model m = load_llama2c(test::shared_path("models/stories260K/stories260K.bin"),
                               test::shared_path("models/stories260K/tok512.bin"));
  const auto text = test::read_file(test::shared_path("data/tinystories-valid-30k.txt"));
  const auto tokens = m.tokenizer->encode(text, true);
  const auto ref = reference_tokens("stories260K.tinystories-valid-30k");
  ASSERT_EQ(tokens.size(), ref.size());
  EXPECT_EQ(tokens, ref);
  EXPECT_EQ(m.tokenizer->decode(std::vector<int32_t>(tokens.begin() + 1, tokens.end())), text);
  PerplexityOptions o;
  o.n_ctx = 128;
  const auto r = compute_perplexity(m, tokens, o);
  EXPECT_EQ(r.n_chunks, 121);
  EXPECT_EQ(r.n_scored, 121 * 63);
  EXPECT_NEAR(r.ppl, 5.8585, 5.8585 * 0.005) << "ppl " << r.ppl << " +/- " << r.ppl_stderr;
  EXPECT_NEAR(r.ppl_stderr, 0.139, 0.01);  // llama.cpp: 5.8583 +/- 0.139
}

TEST(Perplexity, ShakespeareTokensAndPerplexity) {
  const Model m = load_hf_folder(test::shared_path("models/shakespeare-llama-4m"));
  const auto text = test::read_file(test::shared_path("data/shakespeare-test.txt"));
  const auto tokens = m.tokenizer->encode(text, true);
  const auto ref = reference_tokens("shakespeare-llama-4m.shakespeare-test");
  ASSERT_EQ(tokens.size(), ref.size());
  EXPECT_EQ(tokens, ref);
  PerplexityOptions o;
  o.n_ctx = 256;
  const auto r = compute_perplexity(m, ref, o);
  EXPECT_EQ(r.n_chunks, 158);
  EXPECT_NEAR(r.ppl, 32.1781, 32.1781 * 0.005) << "ppl " << r.ppl;
}

TEST(Perplexity, KldAgainstItselfIsZero) {
  const Model m = load_llama2c(test::shared_path("models/stories260K/stories260K.bin"),
                               test::shared_path("models/stories260K/tok512.bin"));
  const auto tokens = m.tokenizer->encode(test::read_file(test::shared_path("data/tinystories-sample-4k.txt")), true);
  const std::string base = test::temp_dir() + "/base.logits";
  PerplexityOptions o;
  o.n_ctx = 64;
  o.save_logits_path = base;
  const auto r0 = compute_perplexity(m, tokens, o);
  o.save_logits_path.clear();
  o.kld_base_path = base;
  const auto r1 = compute_perplexity(m, tokens, o);
  ASSERT_TRUE(r1.kld.has_value());
  EXPECT_LT(r1.kld->mean, 1e-6);
  EXPECT_LT(r1.kld->max, 1e-5);
  EXPECT_EQ(r1.kld->top1_agreement, 1.0);
  EXPECT_NEAR(r1.kld->base_ppl, r0.ppl, 1e-9 * r0.ppl);
  EXPECT_NEAR(r1.kld->delta_ppl, 0.0, 1e-9);
  // Other tokens or another context are refused.
  o.n_ctx = 32;
  EXPECT_THROW(compute_perplexity(m, tokens, o), Error);
}

}  // namespace
}  // namespace lowbit

namespace lowbit {
namespace {

TEST(Perplexity, KldGrowsAsBitsFall) {
  const Model base = load_hf_folder(test::shared_path("models/shakespeare-llama-4m"));
  const auto tokens = base.tokenizer->encode(test::read_file(test::shared_path("data/shakespeare-test.txt")), true);
  const std::string logits = test::temp_dir() + "/base.logits";
  PerplexityOptions o;
  o.n_ctx = 256;
  o.max_chunks = 12;
  o.save_logits_path = logits;
  const auto r_base = compute_perplexity(base, tokens, o);
  o.save_logits_path.clear();
  o.kld_base_path = logits;
  double previous = 0;
  for (const char* name : {"q8_0", "q4_k", "q2_k"}) {
    const Model q = convert_weights(base, format_by_name(name));
    const auto r = compute_perplexity(q, tokens, o);
    ASSERT_TRUE(r.kld.has_value()) << name;
    EXPECT_GT(r.kld->mean, previous) << name;
    EXPECT_NEAR(r.kld->base_ppl, r_base.ppl, 1e-3 * r_base.ppl) << name;
    EXPECT_NEAR(r.kld->delta_ppl, r.ppl - r_base.ppl, 1e-9) << name;
    EXPECT_LE(r.kld->median, r.kld->p99) << name;
    EXPECT_LE(r.kld->p99, r.kld->max) << name;
    previous = r.kld->mean;
    if (std::string(name) == "q8_0") {
      EXPECT_LT(r.kld->mean, 1e-3);
      EXPECT_GT(r.kld->top1_agreement, 0.97);
    }
  }
}

}  // namespace
}  // namespace lowbit
