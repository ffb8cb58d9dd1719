// Mixed precision by measurement: the knapsack's choice against brute force on small
// instances (optimal with exact sizes, never over the budget with rounded ones, its bound
// below the optimum); plans for a size target on shakespeare-llama-4m that the written
// GGUF meets (never over), the emitted recipe giving the same file again; targets below the
// smallest plan or above f32, and sensitivities of another model, refused; the measured
// branching's KLDs against the written file's, measured apart, and its choice the lowest.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <random>

#include "lowbit/calibration.h"
#include "lowbit/engine.h"
#include "lowbit/error.h"
#include "lowbit/format.h"
#include "lowbit/mix.h"
#include "lowbit/model_io.h"
#include "lowbit/quantize.h"
#include "lowbit/sensitivity.h"
#include "test_support.h"

namespace lowbit {
namespace {

const char* kModel = "models/shakespeare-llama-4m";

// The least cost within the budget over every combination (infinity if none fits).
double brute_force(const std::vector<KnapsackItem>& items, uint64_t budget) {
  double best = std::numeric_limits<double>::infinity();
  std::vector<size_t> k(items.size(), 0);
  while (true) {
    uint64_t bytes = 0;
    double cost = 0;
    for (size_t i = 0; i < items.size(); ++i) {
      bytes += items[i].bytes[k[i]];
      cost += items[i].cost[k[i]];
    }
    if (bytes <= budget) best = std::min(best, cost);
    size_t i = 0;
    while (i < items.size() && ++k[i] == items[i].bytes.size()) k[i++] = 0;
    if (i == items.size()) return best;
  }
}

std::vector<KnapsackItem> random_items(std::mt19937& rng) {
  std::vector<KnapsackItem> items(1 + rng() % 6);
  for (KnapsackItem& it : items) {
    const size_t n = 1 + rng() % 4;
    for (size_t k = 0; k < n; ++k) {
      it.bytes.push_back(8 * (1 + rng() % 40));  // a common factor, as formats' sizes have
      it.cost.push_back(std::uniform_real_distribution<double>(0, 1)(rng));
    }
  }
  return items;
}

TEST(Knapsack, OptimalOnSmallInstancesAgainstBruteForce) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 400; ++trial) {
    const auto items = random_items(rng);
    uint64_t lo = 0, hi = 0;
    for (const auto& it : items) {
      lo += *std::min_element(it.bytes.begin(), it.bytes.end());
      hi += *std::max_element(it.bytes.begin(), it.bytes.end());
    }
    const uint64_t budget = lo + rng() % (hi - lo + 9);
    const double best = brute_force(items, budget);
    const Allocation a = allocate_knapsack(items, budget);
    ASSERT_TRUE(a.exact);
    EXPECT_LE(a.bytes, budget);
    EXPECT_NEAR(a.cost, best, 1e-12) << "trial " << trial;
    EXPECT_LE(a.lower_bound, best + 1e-9) << "trial " << trial;
    // A table too small for exact sizes: rounded up, never over, never better than optimal.
    const Allocation coarse = allocate_knapsack(items, budget, 4 * items.size());
    EXPECT_LE(coarse.bytes, budget);
    EXPECT_GE(coarse.cost, best - 1e-12);
  }
}

TEST(Knapsack, BudgetBelowTheSmallestChoiceIsRefused) {
  const std::vector<KnapsackItem> items{{{10, 20}, {1, 0}}, {{30}, {0}}};
  EXPECT_THROW(allocate_knapsack(items, 39), Error);
  EXPECT_EQ(allocate_knapsack(items, 40).bytes, 40u);
}

// Sensitivities for every matrix of the model by the proxy alone (one float pass).
const SensitivityReport& proxy_sensitivities() {
  static const SensitivityReport r = [] {
    const Model m = load_model(test::shared_path(kModel));
    SensitivityOptions o;
    o.formats = {"q2_k", "q4_k", "q6_k", "q8_0"};
    o.calib = {.samples = 2, .length = 64, .seed = 0};
    o.measure = false;
    return measure_sensitivity(m, test::shared_path("data/shakespeare-calib.txt"), o);
  }();
  return r;
}

TEST(Mix, WrittenFileMeetsTheSizeTargetAndTheRecipeRepeatsIt) {
  const std::string dir = test::temp_dir();
  const SensitivityReport& s = proxy_sensitivities();
  ASSERT_EQ(s.tensors.size(), 30u);  // 28 linears, token_embd, output
  for (uint64_t target : {2'100'000ull, 2'600'000ull, 3'000'000ull}) {
    SCOPED_TRACE(target);
    QuantizeOptions q;
    q.input = test::shared_path(kModel);
    q.output = dir + "/mix.gguf";
    q.sensitivity_data = s;
    q.mix_target = {.file_bytes = target, .use_proxy = true};
    const QuantizeReport r = quantize_model(q);
    ASSERT_TRUE(r.mix.has_value());
    EXPECT_LE(r.file_bytes, target);
    // The plan counts the file's bytes exactly: what is left is less than the smallest step up.
    EXPECT_EQ(r.file_bytes, r.mix->fixed_bytes + r.mix->allocation.bytes);
    save_recipe(r.mix->recipe, dir + "/plan.json");
    QuantizeOptions again;
    again.input = q.input;
    again.output = dir + "/again.gguf";
    again.recipe = dir + "/plan.json";
    EXPECT_EQ(quantize_model(again).file_bytes, r.file_bytes);
    EXPECT_EQ(test::read_file(q.output), test::read_file(again.output));
  }
}

TEST(Mix, BitsPerWeightTargetIsMet) {
  const std::string dir = test::temp_dir();
  QuantizeOptions q;
  q.input = test::shared_path(kModel);
  q.output = dir + "/mix";
  q.sensitivity_data = proxy_sensitivities();
  q.mix_target = {.bpw = 4.0, .use_proxy = true};
  const QuantizeReport r = quantize_model(q);
  EXPECT_LE(r.bits_per_weight(), 4.0);
  EXPECT_GT(r.bits_per_weight(), 3.9);  // q2_k..q8_0 steps are small next to the budget
}

TEST(Mix, TargetsOutsideThePossibleAndOtherModelsAreRefused) {
  const Model m = load_model(test::shared_path(kModel));
  const SensitivityReport& s = proxy_sensitivities();
  auto message = [&](const MixTarget& t) {
    try {
      plan_mixed_precision(m, s, t, 0, 1);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_NE(message({.bpw = 1.0, .use_proxy = true}).find("below the smallest plan"), std::string::npos) << message({.bpw = 1.0, .use_proxy = true});
  EXPECT_NE(message({.bpw = 33.0, .use_proxy = true}).find("above the model in f32"), std::string::npos);
  EXPECT_NE(message({.bpw = 4.0}).find("no measured KLD"), std::string::npos);
  const std::string dir = test::temp_dir();
  save_sensitivity(s, dir + "/sens.json");
  EXPECT_EQ(load_sensitivity(dir + "/sens.json", m).tensors.size(), s.tensors.size());
  const Model other = load_model(test::shared_path("models/tinystories-656k"));
  try {
    load_sensitivity(dir + "/sens.json", other);
    FAIL() << "sensitivities of another model accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("measured on another model"), std::string::npos) << e.what();
    EXPECT_EQ(e.context().file, dir + "/sens.json");
  }
}

// Mean KLD(float ‖ q) per token of each calibration window from position `first` on, by
// whole forward passes (as lowbit eval runs a model).
double calibration_kld(const Model& f, const Model& q, const CalibrationSet& cs, int64_t first) {
  const int64_t T = static_cast<int64_t>(cs.samples.front().size()), V = f.config.vocab_size;
  Engine ef(f, T), eq(q, T);  // repacked, as eval runs
  std::vector<float> lf(static_cast<size_t>(T * V)), lq(lf.size());
  auto lse = [&](const float* l) {
    double mx = l[0], s = 0;
    for (int64_t v = 0; v < V; ++v) mx = std::max<double>(mx, l[v]);
    for (int64_t v = 0; v < V; ++v) s += std::exp(l[v] - mx);
    return mx + std::log(s);
  };
  double kl = 0;
  for (const auto& window : cs.samples) {
    ef.forward(window, 0, lf.data());
    eq.forward(window, 0, lq.data());
    for (int64_t t = first; t < T; ++t) {
      const double a = lse(lf.data() + t * V), b = lse(lq.data() + t * V);
      for (int64_t v = 0; v < V; ++v) {
        const double p = lf[t * V + v] - a, q_ = lq[t * V + v] - b;
        kl += std::exp(p) * (p - q_);
      }
    }
  }
  return kl / static_cast<double>(static_cast<int64_t>(cs.samples.size()) * (T - first));
}

TEST(Mix, BranchingMeasuresEveryPlanAndKeepsTheLowest) {
  const std::string model = test::shared_path("models/stories260K/stories260K.bin"), calib = test::shared_path("data/tinystories-valid-30k.txt");
  const std::string tokenizer = test::shared_path("models/stories260K/tok512.bin");
  const Model m = load_model(model, {.tokenizer_path = tokenizer});
  SensitivityOptions so;
  so.formats = {"q4_0", "q5_0", "q8_0"};
  so.calib = {.samples = 3, .length = 64, .seed = 0};
  const SensitivityReport s = measure_sensitivity(m, calib, so);
  const MixTarget target{.bpw = 9.0};
  // A held matrix gets its format, and only one of its candidates can be held.
  const MixPlan held = plan_mixed_precision(m, s, target, 0, 1, {{"token_embd.weight", "q8_0"}});
  EXPECT_EQ(held.formats.front(), std::make_pair(std::string("token_embd.weight"), std::string("q8_0")));
  EXPECT_THROW(plan_mixed_precision(m, s, target, 0, 1, {{"token_embd.weight", "q2_k"}}), Error);

  const std::string dir = test::temp_dir();
  QuantizeOptions q;
  q.input = model;
  q.tokenizer = tokenizer;
  q.output = dir + "/mix.gguf";
  q.sensitivity_data = s;
  q.mix_target = target;
  q.calib = calib;
  q.mix_branch.matrices = 2;
  const QuantizeReport r = quantize_model(q);
  ASSERT_TRUE(r.mix.has_value());
  const std::vector<MixBranch>& branches = r.mix->branches;
  ASSERT_GE(branches.size(), 4u);  // two matrices, at least two fitting formats each
  EXPECT_LE(r.bits_per_weight(), 9.0);
  const MixBranch* chosen = nullptr;
  for (const MixBranch& b : branches) {
    if (b.chosen) {
      EXPECT_EQ(chosen, nullptr);
      chosen = &b;
    }
  }
  ASSERT_NE(chosen, nullptr);
  for (const MixBranch& b : branches) EXPECT_LE(chosen->kld, b.kld);
  // The unbranched plan is among the measured: held where it stands, the plan is the same.
  const MixPlan plain = plan_mixed_precision(m, s, target, r.mix->fixed_bytes, 1);
  bool plain_measured = false;
  for (const MixBranch& b : branches) {
    for (const auto& [name, format] : plain.formats) plain_measured |= b.matrix == name && b.format == format;
  }
  EXPECT_TRUE(plain_measured);
  // The written file, measured apart by whole forward passes on the same windows, has the
  // KLD the branching gave its plan (summation order only).
  const CalibrationSet cs = load_calibration(m, calib, so.calib);
  const Model written = load_model(q.output);
  const int64_t T = so.calib.length;
  EXPECT_NEAR(calibration_kld(m, written, cs, T / 2), chosen->kld, 1e-5 * chosen->kld + 1e-9);  // scored as lowbit eval scores
}

TEST(Mix, TiedEmbeddingIsMeasuredInBothItsUses) {
  // tinystories-656k ties its head to the embedding: quantizing token_embd quantizes both.
  const Model m = load_model(test::shared_path("models/tinystories-656k"));
  ASSERT_TRUE(m.config.tied_output);
  const std::string calib = test::shared_path("data/tinystories-valid-30k.txt");
  SensitivityOptions so;
  so.formats = {"q4_0"};
  so.calib = {.samples = 2, .length = 64, .seed = 0};
  const SensitivityReport s = measure_sensitivity(m, calib, so);
  ASSERT_EQ(s.tensors.front().name, "token_embd.weight");
  const SensitivityChoice& ch = s.tensors.front().choices.at(0);
  Model q = m;
  const auto bytes = std::make_shared<const std::vector<uint8_t>>(quantize_tensor(format_by_name("q4_0"), m.token_embd.to_f32(), m.token_embd.rows, m.token_embd.cols));
  q.token_embd = Weight{"token_embd.weight", &format_by_name("q4_0"), m.token_embd.rows, m.token_embd.cols, *bytes, bytes};
  Model input_only = q;  // what a measurement that missed the head would see
  q.output = q.token_embd;
  q.output.name = "output.weight";
  const CalibrationSet cs = load_calibration(m, calib, so.calib);
  const double both = calibration_kld(m, q, cs, 0), input = calibration_kld(m, input_only, cs, 0);
  EXPECT_NEAR(ch.kld, both, 1e-5 * both);
  EXPECT_GT(both, 1.5 * input);  // the head's share is not small: missing it misplans (PERF.md)
}

TEST(Mix, SpearmanRanks) {
  EXPECT_DOUBLE_EQ(spearman({1, 2, 3, 4}, {10, 20, 30, 40}), 1.0);
  EXPECT_DOUBLE_EQ(spearman({1, 2, 3, 4}, {4, 3, 2, 1}), -1.0);
  EXPECT_NEAR(spearman({1, 2, 2, 3}, {1, 2, 3, 4}), 0.9486832980505138, 1e-12);  // a tie: average ranks
}

}  // namespace
}  // namespace lowbit
