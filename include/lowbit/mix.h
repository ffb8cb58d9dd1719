// Mixed precision by measurement (src/quant/mix/): a format per matrix that minimises the
// predicted cost (the sum of each matrix's measured KLD, or its proxy) under a size limit:
// a multiple-choice knapsack.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "lowbit/model.h"
#include "lowbit/recipe.h"
#include "lowbit/sensitivity.h"

namespace lowbit {

// One item: its candidates' sizes and costs (at least one).
struct KnapsackItem {
  std::vector<uint64_t> bytes;
  std::vector<double> cost;
};

struct Allocation {
  std::vector<size_t> choice;  // per item, an index into its candidates
  uint64_t bytes = 0;          // Σ chosen bytes: never above the budget
  double cost = 0;             // Σ chosen costs
  // A lower bound on the best cost any choice within the budget has: the Lagrangian dual
  // max_λ≥0 Σ_i min_k (cost_ik + λ bytes_ik) − λ budget. cost − lower_bound bounds how far
  // this choice can be from the optimum.
  double lower_bound = 0;
  // Sizes were exact in the dynamic program (in units of their gcd): the choice is optimal.
  // Otherwise they were rounded up to a coarser unit (the choice is optimal for those, or
  // the smallest plan when they overfill), then single changes that lower the cost and
  // still fit in exact bytes are taken, best first: within the budget, not proven optimal.
  bool exact = false;
  uint64_t unit = 1;  // the dynamic program's size unit
};

// The least-cost choice with Σ bytes <= budget, by dynamic programming over the budget in
// units (the gcd of all sizes when the table stays under `max_cells` cells; else the
// smallest unit that does, sizes rounded up, then refined). An Error when even the smallest
// choices exceed the budget.
Allocation allocate_knapsack(const std::vector<KnapsackItem>& items, uint64_t budget, uint64_t max_cells = uint64_t{1} << 26);

// What `quantize --target-bpw/--target-size` asks for.
struct MixTarget {
  double bpw = 0;        // bits per weight of all tensor data (norms included), or
  uint64_t file_bytes = 0;  // the GGUF file's size
  bool use_proxy = false;   // allocate by the proxy instead of the measured KLD
};

// One branch of the measured branching: a matrix held at a format, the plan solved around
// it, and that plan's whole-model KLD on the calibration windows.
struct MixBranch {
  std::string matrix, format;
  double kld = 0;
  bool chosen = false;
};

struct MixPlan {
  Recipe recipe;  // one rule per matrix
  Allocation allocation;
  uint64_t budget = 0;        // bytes for the matrices
  uint64_t fixed_bytes = 0;   // what the plan cannot change (norms; with file_bytes, the header)
  std::vector<std::pair<std::string, std::string>> formats;  // matrix → chosen format, in model order
  std::vector<MixBranch> branches;  // the plans measured by branch_mixed_precision, if it ran
};

// fixed_bytes: the bytes of the tensors outside the plan plus, for a file target, the file's
// header; align: each matrix's bytes are padded to this (GGUF's alignment, 1 for folders).
// Errors name the target when it is below the smallest plan or above f32, and a matrix the
// sensitivities do not cover. `hold`: matrices whose format is given (matrix → format, one of
// its candidates).
MixPlan plan_mixed_precision(const Model& m, const SensitivityReport& s, const MixTarget& target, uint64_t fixed_bytes, uint64_t align,
                             const std::map<std::string, std::string>& hold = {});

// Measured branching (`quantize --branch N`). The sum of single-matrix KLDs misjudges the
// largest matrices most: their errors meet every other matrix's (a tied embedding is also
// the head). For each of the N largest
// matrices and each of its candidates, the plan is solved again with that matrix held
// there; every distinct plan is rounded as the sensitivities were (s.method) and the whole
// model's KLD measured on the calibration windows (s.samples × s.length of `calib`), scored
// as lowbit eval and llama-perplexity score (the second half of each window); the lowest
// wins. The unbranched plan is one of them, so the result never measures worse.
struct BranchOptions {
  int matrices = 1;
  // (plan done, plans, what)
  std::function<void(int64_t, int64_t, const std::string&)> progress;
};
MixPlan branch_mixed_precision(const Model& m, const SensitivityReport& s, const MixTarget& target, uint64_t fixed_bytes, uint64_t align,
                               const std::string& calib, const BranchOptions& o);

// The plan as a recipe file (`--emit-recipe`), and a summary of it: bits per weight by
// layer and kind, as a table and ASCII bars.
void save_recipe(const Recipe& r, const std::string& path);
std::string mix_summary(const Model& m, const MixPlan& plan);

}  // namespace lowbit
