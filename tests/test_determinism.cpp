// Output bytes do not depend on the thread count or on the run: RTN (with an importance
// matrix), GPTQ (act-order), AWQ and SmoothQuant written with 1, 2 and 3 worker threads,
// and twice with the same count, are the same files; so is a seeded QAT run (Block-AP and
// E2E-QP) exported after training with 1 and 2 threads.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "lowbit/atomic_file.h"
#include "lowbit/imatrix.h"
#include "lowbit/model_io.h"
#include "lowbit/qat.h"
#include "lowbit/quantize.h"
#include "lowbit/threads.h"
#include "lowbit/train.h"
#include "test_support.h"

namespace lowbit {
namespace {

namespace fs = std::filesystem;
const char* kModel = "models/shakespeare-llama-4m";


// Restores the thread count the test started with.
class ThreadCounts : public ::testing::Test {
 protected:
  void TearDown() override { set_thread_count(start_); }
  int start_ = thread_count();
};

struct MethodCase {
  const char* name;
  const char* recipe;
  const char* output;  // .gguf or a folder
  MethodConfig method;
  const char* act = "none";
};

class Determinism : public ThreadCounts, public ::testing::WithParamInterface<MethodCase> {};

TEST_P(Determinism, SameBytesForEveryThreadCountAndRun) {
  const MethodCase& c = GetParam();
  const std::string dir = test::temp_dir();
  std::string imatrix_path;
  if (c.method.name == "rtn") {  // collected with 1 thread, used by every run
    set_thread_count(1);
    const Model m = load_model(test::shared_path(kModel));
    const auto tokens = m.tokenizer->encode(test::read_file(test::shared_path("data/shakespeare-calib.txt")), true);
    imatrix_path = dir + "/imatrix.gguf";
    collect_imatrix(m, tokens, 128, 8, "shakespeare-calib").save(imatrix_path);
  }
  auto run = [&](int threads, const std::string& tag) {
    set_thread_count(threads);
    QuantizeOptions o;
    o.input = test::shared_path(kModel);
    o.output = dir + "/" + tag + "-" + c.output;
    o.recipe = c.recipe;
    o.method = c.method;
    o.activations.act = c.act;
    if (c.method.name != "rtn") {
      o.calib = test::shared_path("data/shakespeare-calib.txt");
      o.calib_options = {.samples = 8, .length = 128};
    } else {
      o.imatrix = imatrix_path;
    }
    quantize_model(o);
    return test::output_files(o.output);
  };
  const auto one = run(1, "t1");
  EXPECT_EQ(run(2, "t2"), one) << "2 threads";
  EXPECT_EQ(run(3, "t3"), one) << "3 threads";
  EXPECT_EQ(run(2, "t2-again"), one) << "a second run";
}

INSTANTIATE_TEST_SUITE_P(
    Methods, Determinism,
    ::testing::Values(MethodCase{"rtn_q4_k_m", "q4_k_m", "m.gguf", {"rtn", {}}},
                      MethodCase{"rtn_q2_k", "q2_k", "m.gguf", {"rtn", {}}},
                      MethodCase{"gptq_act_order", "q4_k_m", "m.gguf", {"gptq", {{"act-order", "true"}}}},
                      MethodCase{"gptq_int4_folder", "pure:int4_g64_sym", "folder", {"gptq", {}}},
                      MethodCase{"awq", "pure:int4_g128_asym", "folder", {"awq", {}}},
                      MethodCase{"smoothquant_w8a8", "pure:int8_pc_sym", "folder", {"smoothquant", {}}, "int8"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST_F(ThreadCounts, SeededQatWritesTheSameBytesForEveryThreadCount) {
  const std::string dir = test::temp_dir();
  const Model m = load_model(test::shared_path(kModel));
  const auto tokens = m.tokenizer->encode(test::read_file(test::shared_path("data/shakespeare-calib.txt")), true);
  auto run = [&](int threads) {
    set_thread_count(threads);
    TrainModel tm(m);
    QatOptions o;
    o.format = &format_by_name("int3_g64_asym");
    o.block_ap = {.samples = 8, .seq_len = 64, .epochs = 1, .batch = 2, .seed = 7};
    o.train.steps = 3;
    o.train.batch = 2;
    o.train.seq_len = 32;
    o.train.seed = 7;
    quantization_aware_training(tm, tokens, o);
    QuantizeOptions q;
    q.input = test::shared_path(kModel);
    q.output = dir + "/qat-" + std::to_string(threads);
    q.recipe_data = Recipe{"qat", "", "keep", {}};
    q.transform = [&](Model& model) { tm.export_to(model); };
    quantize_model(q);
    return test::output_files(q.output);
  };
  const auto one = run(1);
  EXPECT_EQ(run(2), one);
}

}  // namespace
}  // namespace lowbit
