// KLD by position (by_position.h) against the perplexity path: with one bucket per
// position, the buckets llama.cpp's method scores (the second half of each chunk) average
// to compute_perplexity's mean KLD; a model against itself has none; bad bucket counts
// and other vocabularies are refused.
#include <gtest/gtest.h>

#include "lowbit/by_position.h"
#include "lowbit/error.h"
#include "lowbit/model_io.h"
#include "lowbit/perplexity.h"
#include "test_support.h"

namespace lowbit {
namespace {

TEST(ByPosition, AgreesWithThePerplexityKld) {
  const Model base = load_model(test::shared_path("models/shakespeare-llama-4m"));
  const Model q = convert_weights(base, format_by_name("q4_0"));
  const auto tokens = base.tokenizer->encode(test::read_file(test::shared_path("data/shakespeare-test.txt")), true);
  const int64_t n_ctx = 64, chunks = 6;
  const std::string dir = test::temp_dir();
  PerplexityOptions p;
  p.n_ctx = n_ctx;
  p.max_chunks = chunks;
  p.save_logits_path = dir + "/base.logits";
  compute_perplexity(base, tokens, p);
  p.save_logits_path.clear();
  p.kld_base_path = dir + "/base.logits";
  p.kv = kv_cache_options("q4_0", false);
  const KldStats want = *compute_perplexity(q, tokens, p).kld;

  const auto buckets = kld_by_position(base, q, tokens, {.n_ctx = n_ctx, .max_chunks = chunks, .buckets = n_ctx - 1, .kv = p.kv});
  ASSERT_EQ(buckets.size(), static_cast<size_t>(n_ctx - 1));
  double kld = 0, top1 = 0;
  int64_t n = 0;
  for (const PositionBucket& b : buckets) {
    EXPECT_EQ(b.first, b.last);
    EXPECT_EQ(b.tokens, chunks);
    if (b.first < n_ctx / 2) continue;
    kld += b.kld_mean * static_cast<double>(b.tokens);
    top1 += b.top1 * static_cast<double>(b.tokens);
    n += b.tokens;
  }
  EXPECT_EQ(n, want.tokens);
  // The perplexity path reads the base from the 16-bit logits file: each log-probability
  // within half a step of 40 / 65535, which bounds how far a token's KLD can move.
  EXPECT_NEAR(kld / n, want.mean, 0.5 * 40.0 / 65535);
  EXPECT_NEAR(top1 / n, want.top1_agreement, 1e-12);  // the same positions: the same argmaxes

  // Four buckets cover positions 0..62 without gaps; the model against itself: nothing.
  const auto self = kld_by_position(base, base, tokens, {.n_ctx = n_ctx, .max_chunks = 2, .buckets = 4});
  int64_t next = 0;
  for (const PositionBucket& b : self) {
    EXPECT_EQ(b.first, next);
    next = b.last + 1;
    EXPECT_EQ(b.kld_mean, 0.0);
    EXPECT_EQ(b.top1, 1.0);
  }
  EXPECT_EQ(next, n_ctx - 1);
  EXPECT_THROW(kld_by_position(base, q, tokens, {.n_ctx = n_ctx, .buckets = 0}), Error);
  EXPECT_THROW(kld_by_position(base, q, tokens, {.n_ctx = n_ctx, .buckets = n_ctx}), Error);
}

}  // namespace
}  // namespace lowbit
