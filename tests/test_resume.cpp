// quantize --resume: a run killed part-way (std::_Exit: no destructor runs, as with SIGKILL)
// and resumed writes the same bytes as an uninterrupted run, for GGUF and folder outputs,
// rounded and calibrated (GPTQ continues at the block whose inputs it saved). The part
// already written is checked by its journal's digests: a damaged tensor is redone. A run
// with other options refuses to continue it; a run without --resume removes it.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

#include <sys/stat.h>
#include <unistd.h>

#include "lowbit/atomic_file.h"
#include "lowbit/error.h"
#include "lowbit/imatrix.h"
#include "lowbit/model_io.h"
#include "lowbit/quantize.h"
#include "lowbit/sensitivity.h"
#include "test_support.h"

namespace lowbit {
namespace {

namespace fs = std::filesystem;

struct Case {
  const char* name;
  const char* output;  // file name: .gguf, or a folder
  const char* recipe;
  const char* method;
  const char* export_layout;
  int64_t kill_at;        // the tensor whose turn it is when the process dies
  int64_t resumed_block;  // the block the calibrated pass continues at (-1: none)
};

QuantizeOptions options_for(const Case& c, const std::string& output) {
  QuantizeOptions o;
  o.input = test::shared_path("models/shakespeare-llama-4m");
  o.output = output;
  o.recipe = c.recipe;
  o.method.name = c.method;
  o.export_layout = c.export_layout;
  if (o.method.name != "rtn") {
    o.calib = test::shared_path("data/shakespeare-calib.txt");
    o.calib_options = {.samples = 8, .length = 128};
  }
  return o;
}

// Runs the quantize and dies (exit 42, nothing cleaned up) when tensor `at`'s turn comes.
[[noreturn]] void quantize_and_die(QuantizeOptions o, int64_t at) {
  o.progress = [at](int64_t i, int64_t, uint64_t, const std::string&) {
    if (i == at) std::_Exit(42);
  };
  quantize_model(o);
  std::_Exit(1);  // finished: the kill point was past the end
}

class Resume : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

TEST_P(Resume, KilledRunResumedWritesTheSameBytes) {
  const Case& c = GetParam();
  const std::string dir = test::death_test_dir();
  const std::string out = dir + "/" + c.output;
  EXPECT_EXIT(quantize_and_die(options_for(c, out), c.kill_at), ::testing::ExitedWithCode(42), "");
  ASSERT_FALSE(fs::exists(out)) << "nothing under the final name";
  // The partial output, its journal and, for a calibrated method, the saved block inputs.
  ASSERT_EQ(test::temporaries_in(dir).size(), std::string(c.method) == "rtn" ? 2u : 3u);

  QuantizeOptions o = options_for(c, out);
  o.resume = true;
  const QuantizeReport resumed = quantize_model(o);
  EXPECT_GT(resumed.resumed_tensors, 0) << resumed.resume_note;
  EXPECT_LE(resumed.resumed_tensors, c.kill_at);
  EXPECT_EQ(resumed.resumed_block, c.resumed_block) << resumed.resume_note;
  EXPECT_TRUE(test::temporaries_in(dir).empty());

  const std::string whole = dir + "/whole-" + c.output;
  const QuantizeReport uninterrupted = quantize_model(options_for(c, whole));
  EXPECT_EQ(test::output_files(out), test::output_files(whole));
  EXPECT_EQ(resumed.bytes, uninterrupted.bytes);
  EXPECT_EQ(resumed.parameters, uninterrupted.parameters);
}

INSTANTIATE_TEST_SUITE_P(
    Outputs, Resume,
    ::testing::Values(Case{"gguf_rtn", "m.gguf", "q4_k_m", "rtn", "", 20, -1},
                      Case{"gguf_gptq", "m.gguf", "q4_k_m", "gptq", "", 23, 2},
                      Case{"folder_gptq_export", "m", "pure:int4_g128_sym", "gptq", "gptq", 14, 1},
                      Case{"folder_awq", "m", "pure:q4_k", "awq", "", 33, 3}),
    [](const auto& info) { return std::string(info.param.name); });

// Kills a run at `at` and returns the dead run's temporary output.
std::string killed_run(const Case& c, const std::string& out, const std::string& dir) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(quantize_and_die(options_for(c, out), c.kill_at), ::testing::ExitedWithCode(42), "");
  for (const auto& name : test::temporaries_in(dir)) {
    if (!name.ends_with(".journal") && !name.ends_with(".acts")) return dir + "/" + name;
  }
  ADD_FAILURE() << "no partial output left";
  return "";
}

// The end offsets the journal lists, in order (region 0: the header).
std::vector<uint64_t> journal_ends(const std::string& temp) {
  std::ifstream in(temp + ".journal");
  std::vector<uint64_t> ends;
  std::string key;
  while (in >> key) {
    if (key == "region") {
      uint64_t end;
      std::string digest;
      in >> end >> digest;
      ends.push_back(end);
    } else {
      std::string rest;
      std::getline(in, rest);
    }
  }
  return ends;
}

void flip_byte(const std::string& path, uint64_t at) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(at));
  char b = 0;
  f.read(&b, 1);
  b = static_cast<char>(b ^ 0x5a);
  f.seekp(static_cast<std::streamoff>(at));
  f.write(&b, 1);
}

TEST(ResumeChecks, ADamagedTensorIsRedoneAndTheResultStillMatches) {
  const Case c{"rtn", "m.gguf", "q4_k_m", "rtn", "", 20, -1};
  const std::string dir = test::death_test_dir();
  const std::string out = dir + "/m.gguf";
  const std::string temp = killed_run(c, out, dir);
  const std::vector<uint64_t> ends = journal_ends(temp);
  ASSERT_GE(ends.size(), 10u);
  flip_byte(temp, ends[7] + 3);  // inside tensor 7 (region 8)

  QuantizeOptions o = options_for(c, out);
  o.resume = true;
  const QuantizeReport r = quantize_model(o);
  EXPECT_EQ(r.resumed_tensors, 7) << r.resume_note;
  quantize_model(options_for(c, dir + "/whole.gguf"));
  EXPECT_EQ(test::output_files(out), test::output_files(dir + "/whole.gguf"));
}

TEST(ResumeChecks, DamageBeforeTheSavedBlockRestartsTheCalibratedPass) {
  const Case c{"gptq", "m.gguf", "q4_k_m", "gptq", "", 23, 2};
  const std::string dir = test::death_test_dir();
  const std::string out = dir + "/m.gguf";
  const std::string temp = killed_run(c, out, dir);
  const std::vector<uint64_t> ends = journal_ends(temp);
  ASSERT_GE(ends.size(), 12u);
  flip_byte(temp, ends[12] + 1);  // tensor 12, in block 1: block 1's inputs are gone, so the pass restarts

  QuantizeOptions o = options_for(c, out);
  o.resume = true;
  const QuantizeReport r = quantize_model(o);
  EXPECT_EQ(r.resumed_tensors, 1) << r.resume_note;  // token_embd kept
  EXPECT_EQ(r.resumed_block, -1);
  quantize_model(options_for(c, dir + "/whole.gguf"));
  EXPECT_EQ(test::output_files(out), test::output_files(dir + "/whole.gguf"));
}

// The saved inputs of the block a resumed pass continues at are already on disk: they are
// used as they are, not written again (for a large model that is gigabytes).
TEST(ResumeChecks, AResumedPassKeepsTheSavedBlockInputsItStartsFrom) {
  const Case c{"gptq", "m.gguf", "q4_k_m", "gptq", "", 23, 2};
  const std::string dir = test::death_test_dir();
  const std::string out = dir + "/m.gguf";
  const std::string temp = killed_run(c, out, dir);
  auto inode_of_acts = [&] {
    for (const auto& name : test::temporaries_in(dir)) {
      struct stat st {};
      if (name.ends_with(".acts") && ::stat((dir + "/" + name).c_str(), &st) == 0) return static_cast<uint64_t>(st.st_ino);
    }
    return uint64_t{0};
  };
  const uint64_t saved = inode_of_acts();
  ASSERT_NE(saved, 0u);
  QuantizeOptions o = options_for(c, out);
  o.resume = true;
  EXPECT_EXIT(quantize_and_die(o, c.kill_at + 1), ::testing::ExitedWithCode(42), "");  // block 2 fetched, its tensors being written
  EXPECT_EQ(inode_of_acts(), saved) << "the saved block inputs were written again";
  const QuantizeReport r = quantize_model(o);
  EXPECT_EQ(r.resumed_block, 2) << r.resume_note;
  quantize_model(options_for(c, dir + "/whole.gguf"));
  EXPECT_EQ(test::output_files(out), test::output_files(dir + "/whole.gguf"));
}

TEST(ResumeChecks, OtherOptionsAreRefusedAndThePartialOutputKept) {
  const Case c{"rtn", "m.gguf", "q4_k_m", "rtn", "", 20, -1};
  const std::string dir = test::death_test_dir();
  const std::string out = dir + "/m.gguf";
  killed_run(c, out, dir);
  QuantizeOptions o = options_for(c, out);
  o.recipe = "q5_k_m";
  o.resume = true;
  try {
    quantize_model(o);
    FAIL() << "resumed a run made with another recipe";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("other options"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(".tmp."), std::string::npos) << "names the partial output: " << e.what();
  }
  EXPECT_EQ(test::temporaries_in(dir).size(), 2u);
  EXPECT_FALSE(fs::exists(out));
}

TEST(ResumeChecks, WithoutResumeTheLeftoverIsRemoved) {
  const Case c{"rtn", "m.gguf", "q4_k_m", "rtn", "", 20, -1};
  const std::string dir = test::death_test_dir();
  const std::string out = dir + "/m.gguf";
  killed_run(c, out, dir);
  const QuantizeReport r = quantize_model(options_for(c, out));
  EXPECT_EQ(r.resumed_tensors, 0);
  EXPECT_TRUE(test::temporaries_in(dir).empty());
  EXPECT_TRUE(fs::exists(out));
}

TEST(ResumeChecks, NothingToResumeStartsFromTheBeginning) {
  const Case c{"rtn", "m.gguf", "q4_k_m", "rtn", "", 20, -1};
  const std::string dir = test::death_test_dir();
  QuantizeOptions o = options_for(c, dir + "/m.gguf");
  o.resume = true;
  const QuantizeReport r = quantize_model(o);
  EXPECT_EQ(r.resumed_tensors, 0);
  EXPECT_NE(r.resume_note.find("no partial output"), std::string::npos) << r.resume_note;
  EXPECT_TRUE(test::temporaries_in(dir).empty());
}

// imatrix --resume: a collection killed after chunk 5 (sums saved after every chunk) and
// resumed gives exactly the uninterrupted sums; a checkpoint of another chunking is refused.
TEST(ResumeChecks, ImatrixContinuesFromItsCheckpointToTheSameSums) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const std::string dir = test::death_test_dir();
  const Model m = load_model(test::shared_path("models/shakespeare-llama-4m"));
  const auto tokens = m.tokenizer->encode(test::read_file(test::shared_path("data/shakespeare-calib.txt")), true);
  const StatsCheckpoint every_chunk{.path = dir + "/im.gguf.checkpoint", .resume = true, .every_seconds = 0};
  EXPECT_EXIT(
      {
        collect_imatrix(m, tokens, 64, 12, "calib", [](int64_t done, int64_t) {
          if (done == 6) std::_Exit(42);  // chunk 6 is done, its sums not yet saved
        }, every_chunk);
        std::_Exit(1);
      },
      ::testing::ExitedWithCode(42), "");
  ASSERT_TRUE(fs::exists(every_chunk.path));
  int64_t first_chunk_run = -1;
  std::string note;
  const ImportanceMatrix resumed = collect_imatrix(m, tokens, 64, 12, "calib", [&](int64_t done, int64_t) {
    if (first_chunk_run < 0) first_chunk_run = done;
  }, every_chunk, &note);
  EXPECT_EQ(first_chunk_run, 6) << note;  // chunks 1-5 came from the checkpoint
  EXPECT_NE(note.find("after 5 items"), std::string::npos) << note;
  EXPECT_FALSE(fs::exists(every_chunk.path)) << "a finished run removes its checkpoint";
  const ImportanceMatrix whole = collect_imatrix(m, tokens, 64, 12, "calib");
  ASSERT_EQ(resumed.entries.size(), whole.entries.size());
  for (const auto& [name, e] : whole.entries) {
    EXPECT_EQ(resumed.entries.at(name).count, e.count) << name;
    EXPECT_EQ(resumed.entries.at(name).sum2, e.sum2) << name;  // exactly
  }

  // A checkpoint of 64-token chunks does not continue a run of 32-token ones, and stays.
  EXPECT_THROW(collect_imatrix(m, tokens, 64, 12, "calib", [](int64_t done, int64_t) {
    if (done == 3) throw Error("interrupted");
  }, every_chunk), Error);
  ASSERT_TRUE(fs::exists(every_chunk.path));
  try {
    collect_imatrix(m, tokens, 32, 12, "calib", {}, every_chunk);
    ADD_FAILURE() << "continued a checkpoint of other chunks";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("other inputs or options"), std::string::npos) << e.what();
    EXPECT_EQ(e.context().file, every_chunk.path);
  }
  EXPECT_TRUE(fs::exists(every_chunk.path));
}

// sensitivity --resume: a measurement killed after 10 of its choices (saved after every
// matrix) and resumed gives the uninterrupted report, proxies and KLDs exactly.
TEST(ResumeChecks, SensitivityContinuesFromItsCheckpointToTheSameReport) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const std::string dir = test::death_test_dir();
  const Model m = load_model(test::shared_path("models/shakespeare-llama-4m"));
  const std::string calib = test::shared_path("data/shakespeare-calib.txt");
  SensitivityOptions o;
  o.formats = {"q3_k", "q4_k"};
  o.calib = {.samples = 2, .length = 64, .seed = 0};
  o.checkpoint = {.path = dir + "/sens.json.checkpoint", .resume = true, .every_seconds = 0};
  EXPECT_EXIT(
      {
        SensitivityOptions dying = o;
        dying.progress = [](int64_t done, int64_t, const std::string&) {
          if (done == 10) std::_Exit(42);
        };
        measure_sensitivity(m, calib, dying);
        std::_Exit(1);
      },
      ::testing::ExitedWithCode(42), "");
  ASSERT_TRUE(fs::exists(o.checkpoint.path));
  std::string note;
  int64_t first_step = -1;
  SensitivityOptions again = o;
  again.resume_note = &note;
  again.progress = [&](int64_t done, int64_t, const std::string&) {
    if (first_step < 0) first_step = done;
  };
  const SensitivityReport resumed = measure_sensitivity(m, calib, again);
  EXPECT_NE(note.find("after 4 items"), std::string::npos) << note;  // 4 matrices of 2 choices saved
  EXPECT_EQ(first_step, 9);
  EXPECT_FALSE(fs::exists(o.checkpoint.path));
  SensitivityOptions plain = o;
  plain.checkpoint = {};
  const SensitivityReport whole = measure_sensitivity(m, calib, plain);
  ASSERT_EQ(resumed.tensors.size(), whole.tensors.size());
  for (size_t i = 0; i < whole.tensors.size(); ++i) {
    ASSERT_EQ(resumed.tensors[i].choices.size(), whole.tensors[i].choices.size());
    for (size_t k = 0; k < whole.tensors[i].choices.size(); ++k) {
      const auto &a = resumed.tensors[i].choices[k], &b = whole.tensors[i].choices[k];
      EXPECT_EQ(a.format, b.format);
      EXPECT_EQ(a.proxy, b.proxy) << whole.tensors[i].name;
      EXPECT_EQ(a.kld, b.kld) << whole.tensors[i].name;
    }
  }
  EXPECT_EQ(resumed.rank_correlation, whole.rank_correlation);
}

}  // namespace
}  // namespace lowbit
