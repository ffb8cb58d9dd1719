// perplexity and eval --checkpoint/--resume: a pass killed part-way (std::_Exit: no
// destructor runs, as with SIGKILL) and resumed gives exactly the uninterrupted numbers,
// and its --save-logits file the same bytes; a damaged partial logits file makes the pass
// start again (to the same result); eval skips the rows it finished and continues the
// running pass, to the same table.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <unistd.h>

#include "lowbit/error.h"
#include "lowbit/evaluate.h"
#include "lowbit/model_io.h"
#include "lowbit/perplexity.h"
#include "lowbit/quantize.h"
#include "test_support.h"

namespace lowbit {
namespace {

namespace fs = std::filesystem;

void expect_same_numbers(const PerplexityResult& a, const PerplexityResult& b) {
  EXPECT_EQ(a.ppl, b.ppl);  // exactly: the same sums in the same order
  EXPECT_EQ(a.ppl_stderr, b.ppl_stderr);
  EXPECT_EQ(a.n_scored, b.n_scored);
  ASSERT_EQ(a.kld.has_value(), b.kld.has_value());
  if (!a.kld) return;
  for (auto field : {&KldStats::mean, &KldStats::stderr_mean, &KldStats::max, &KldStats::p999, &KldStats::p99, &KldStats::median,
                     &KldStats::min, &KldStats::top1_agreement, &KldStats::base_ppl, &KldStats::delta_ppl}) {
    EXPECT_EQ((*a.kld).*field, (*b.kld).*field);
  }
}

class PerplexityResume : public ::testing::Test {
 protected:
  void SetUp() override {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    dir_ = test::death_test_dir();
    tokens_ = model_.tokenizer->encode(test::read_file(test::shared_path("data/shakespeare-test.txt")), true);
    options_.n_ctx = 64;
    options_.max_chunks = 12;
  }
  // Runs the pass and dies (exit 42) once chunk `at` is scored, before its checkpoint.
  [[noreturn]] void run_and_die(PerplexityOptions o, int64_t at) {
    o.progress = [at](int64_t done, int64_t, double) {
      if (done == at) std::_Exit(42);
    };
    compute_perplexity(model_, tokens_, o);
    std::_Exit(1);
  }
  Model model_ = load_model(test::shared_path("models/shakespeare-llama-4m"));
  std::vector<int32_t> tokens_;
  std::string dir_;
  PerplexityOptions options_;
};

TEST_F(PerplexityResume, ASavingPassContinuesToTheSameNumbersAndLogitsBytes) {
  PerplexityOptions o = options_;
  o.save_logits_path = dir_ + "/base.logits";
  o.checkpoint = {.path = dir_ + "/ppl.checkpoint", .resume = true, .every_seconds = 0};
  EXPECT_EXIT(run_and_die(o, 7), ::testing::ExitedWithCode(42), "");
  ASSERT_TRUE(fs::exists(o.checkpoint.path));
  EXPECT_FALSE(fs::exists(o.save_logits_path)) << "nothing under the final name before the pass ends";
  ASSERT_EQ(test::temporaries_in(dir_).size(), 1u) << "the dead pass's partial logits file";

  int64_t first_chunk_run = -1;
  PerplexityOptions again = o;
  again.progress = [&](int64_t done, int64_t, double) {
    if (first_chunk_run < 0) first_chunk_run = done;
  };
  const PerplexityResult resumed = compute_perplexity(model_, tokens_, again);
  EXPECT_EQ(first_chunk_run, 7) << resumed.resume_note;  // chunks 1-6 came from the checkpoint
  EXPECT_NE(resumed.resume_note.find("after 6 items"), std::string::npos) << resumed.resume_note;
  EXPECT_FALSE(fs::exists(o.checkpoint.path)) << "a finished pass removes its checkpoint";
  EXPECT_TRUE(test::temporaries_in(dir_).empty());
  const std::string resumed_logits = test::read_file(o.save_logits_path);

  PerplexityOptions plain = options_;
  plain.save_logits_path = dir_ + "/whole.logits";
  const PerplexityResult whole = compute_perplexity(model_, tokens_, plain);
  expect_same_numbers(resumed, whole);
  EXPECT_TRUE(resumed_logits == test::read_file(plain.save_logits_path)) << "the logits file differs from an uninterrupted run's";
}

TEST_F(PerplexityResume, AKldPassContinuesToTheSameStatistics) {
  PerplexityOptions base = options_;
  base.save_logits_path = dir_ + "/base.logits";
  compute_perplexity(model_, tokens_, base);
  PerplexityOptions o = options_;
  o.kld_base_path = base.save_logits_path;
  o.kv = kv_cache_options("q4_0", false);  // a pass whose KLD is not zero
  o.checkpoint = {.path = dir_ + "/kld.checkpoint", .resume = true, .every_seconds = 0};
  EXPECT_EXIT(run_and_die(o, 5), ::testing::ExitedWithCode(42), "");
  const PerplexityResult resumed = compute_perplexity(model_, tokens_, o);
  EXPECT_NE(resumed.resume_note.find("after 4 items"), std::string::npos) << resumed.resume_note;
  PerplexityOptions plain = o;
  plain.checkpoint = {};
  const PerplexityResult whole = compute_perplexity(model_, tokens_, plain);
  ASSERT_TRUE(whole.kld && whole.kld->mean > 0);
  expect_same_numbers(resumed, whole);

  // A checkpoint of another KV cache does not continue this pass, and stays.
  EXPECT_EXIT(run_and_die(o, 5), ::testing::ExitedWithCode(42), "");
  PerplexityOptions other = o;
  other.kv = kv_cache_options("q8_0", false);
  try {
    compute_perplexity(model_, tokens_, other);
    ADD_FAILURE() << "continued a checkpoint of another KV cache";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("other inputs or options"), std::string::npos) << e.what();
    EXPECT_EQ(e.context().file, o.checkpoint.path);
  }
  EXPECT_TRUE(fs::exists(o.checkpoint.path));
}

TEST_F(PerplexityResume, ADamagedPartialLogitsFileMakesThePassStartAgain) {
  PerplexityOptions o = options_;
  o.save_logits_path = dir_ + "/base.logits";
  o.checkpoint = {.path = dir_ + "/ppl.checkpoint", .resume = true, .every_seconds = 0};
  EXPECT_EXIT(run_and_die(o, 7), ::testing::ExitedWithCode(42), "");
  const auto left = test::temporaries_in(dir_);
  ASSERT_EQ(left.size(), 1u);
  {  // one byte of the first records flipped
    std::fstream f(dir_ + "/" + left[0], std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(2000);
    const char x = 0x55;
    f.write(&x, 1);
  }
  int64_t first_chunk_run = -1;
  PerplexityOptions again = o;
  again.progress = [&](int64_t done, int64_t, double) {
    if (first_chunk_run < 0) first_chunk_run = done;
  };
  const PerplexityResult resumed = compute_perplexity(model_, tokens_, again);
  EXPECT_EQ(first_chunk_run, 1);
  EXPECT_NE(resumed.resume_note.find("started again"), std::string::npos) << resumed.resume_note;
  EXPECT_TRUE(test::temporaries_in(dir_).empty());
  PerplexityOptions plain = options_;
  plain.save_logits_path = dir_ + "/whole.logits";
  expect_same_numbers(resumed, compute_perplexity(model_, tokens_, plain));
  EXPECT_TRUE(test::read_file(o.save_logits_path) == test::read_file(plain.save_logits_path));
}

// eval: killed in the second quantized model's pass, then resumed: the base and first rows
// come from the checkpoint, the pass continues, and every number but the timings and
// memory is the uninterrupted table's.
TEST(EvalResume, AKilledComparisonContinuesToTheSameTable) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const std::string dir = test::death_test_dir();
  const std::string base = test::shared_path("models/shakespeare-llama-4m");
  std::vector<std::string> quantized;
  for (const char* recipe : {"q4_0", "q3_k_s"}) {
    QuantizeOptions q;
    q.input = base;
    q.output = dir + "/" + recipe + ".gguf";
    q.recipe = recipe;
    if (!fs::exists(q.output)) quantize_model(q);
    quantized.push_back(q.output);
  }
  EvalOptions o;
  o.text_path = test::shared_path("data/shakespeare-test.txt");
  o.n_ctx = 64;
  o.max_chunks = 10;
  o.gen_tokens = 4;
  o.kv_caches = parse_eval_kv_caches("f32,q8_0");
  o.by_position = 2;
  o.checkpoint = {.path = dir + "/eval.checkpoint", .resume = true, .every_seconds = 0};
  EXPECT_EXIT(
      {
        EvalOptions dying = o;
        int passes = 0;
        dying.progress = [&](int64_t done, int64_t, double) {
          if (done == 1) ++passes;
          if (passes == 4 && done == 6) std::_Exit(42);  // base, q4_0 f32, q4_0 q8_0, then q3_k_s f32
        };
        evaluate_models(base, quantized, dying);
        std::_Exit(1);
      },
      ::testing::ExitedWithCode(42), "");
  ASSERT_TRUE(fs::exists(o.checkpoint.path));
  ASSERT_TRUE(fs::exists(o.checkpoint.path + ".logits"));
  ASSERT_TRUE(fs::exists(o.checkpoint.path + ".pass"));

  std::vector<std::string> said;
  std::vector<int64_t> pass_starts;
  EvalOptions again = o;
  again.status = [&](const std::string& s) { said.push_back(s); };
  again.progress = [&](int64_t done, int64_t, double) {
    if (pass_starts.empty() || done < pass_starts.back()) pass_starts.push_back(done);
  };
  const auto resumed = evaluate_models(base, quantized, again);
  ASSERT_EQ(pass_starts.size(), 2u) << "the q3_k_s passes only";
  EXPECT_EQ(pass_starts[0], 6);  // 5 chunks of the running pass came from its checkpoint
  EXPECT_EQ(pass_starts[1], 1);
  EXPECT_NE(said.front().find("3 rows done"), std::string::npos) << said.front();
  for (const char* suffix : {"", ".logits", ".pass"}) EXPECT_FALSE(fs::exists(o.checkpoint.path + suffix)) << suffix;

  EvalOptions plain = o;
  plain.checkpoint = {};
  const auto whole = evaluate_models(base, quantized, plain);
  ASSERT_EQ(resumed.size(), whole.size());
  ASSERT_EQ(whole.size(), 5u);
  for (size_t i = 0; i < whole.size(); ++i) {
    const EvalRow &a = resumed[i], &b = whole[i];
    EXPECT_EQ(a.model, b.model);
    EXPECT_EQ(a.kv_cache, b.kv_cache);
    EXPECT_EQ(a.file_bytes, b.file_bytes);
    EXPECT_EQ(a.ppl, b.ppl) << i;
    EXPECT_EQ(a.ppl_stderr, b.ppl_stderr) << i;
    EXPECT_EQ(a.delta_ppl, b.delta_ppl) << i;
    EXPECT_EQ(a.kld_mean, b.kld_mean) << i;
    EXPECT_EQ(a.kld_p99, b.kld_p99) << i;
    EXPECT_EQ(a.top1, b.top1) << i;
    EXPECT_EQ(a.kv_bytes_per_token, b.kv_bytes_per_token) << i;
    ASSERT_EQ(a.by_position.size(), b.by_position.size()) << i;
    for (size_t k = 0; k < a.by_position.size(); ++k) EXPECT_EQ(a.by_position[k].kld_mean, b.by_position[k].kld_mean) << i;
  }
  EXPECT_GT(whole[4].kld_mean, 0);
}

}  // namespace
}  // namespace lowbit
