// The eval table's measurements and layout: a step's peak resident memory (64 MB touched
// after a reset shows up), and the task and by-position tables.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>

#include "eval/process_memory.h"
#include "lowbit/evaluate.h"

namespace lowbit {
namespace {

TEST(EvalTable, PeakResidentMemoryOfAStep) {
  if (!reset_peak_resident_memory()) GTEST_SKIP() << "this kernel does not reset the peak (clear_refs)";
  const uint64_t before = resident_memory().now;
  ASSERT_GT(before, 0u);
  {
    constexpr size_t kBytes = size_t{64} << 20;
    auto block = std::make_unique<char[]>(kBytes);
    std::memset(block.get(), 1, kBytes);  // touched: resident
    EXPECT_GE(resident_memory().now + (uint64_t{1} << 20), before + kBytes);
    EXPECT_NE(block[kBytes - 1], 0);
  }
  // The kernel counts resident pages per thread and folds them in every 64 faults: the
  // figures may lag by that many pages of each thread.
  EXPECT_GE(resident_memory().peak + (uint64_t{1} << 20), before + (uint64_t{64} << 20));
}

TEST(EvalTable, TaskAndPositionColumns) {
  EvalRow base;
  base.model = "base";
  base.is_base = true;
  base.task_items = 100;
  base.task_accuracy = 0.5;
  base.task_stderr = 0.05;
  EvalRow q = base;
  q.model = "dir/q4.gguf";
  q.is_base = false;
  q.task_agreement = 0.9;
  q.kv_cache = "q4_0+rot";
  q.by_position = {{0, 9, 10, 0.01, 0.001, 0.9}, {10, 19, 10, 0.02, 0.002, 0.8}};
  const std::string table = format_eval_table({base, q}, false);
  EXPECT_NE(table.find("task acc %"), std::string::npos) << table;
  EXPECT_NE(table.find("50.0 +/- 9.8"), std::string::npos) << table;
  EXPECT_NE(table.find("90.0"), std::string::npos) << table;
  const std::string positions = format_position_table({base, q}, true);
  EXPECT_NE(positions.find("| q4.gguf KV q4_0+rot"), std::string::npos) << positions;
  EXPECT_NE(positions.find("10-19"), std::string::npos) << positions;
  EXPECT_NE(positions.find("0.02000 (80.0)"), std::string::npos) << positions;
  EXPECT_EQ(format_position_table({base}, true), "");
}

}  // namespace
}  // namespace lowbit
