// allocate_knapsack (lowbit/mix.h): the multiple-choice knapsack by dynamic programming over
// the budget, and its Lagrangian lower bound.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "lowbit/error.h"
#include "lowbit/mix.h"

namespace lowbit {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// max over λ >= 0 of Σ_i min_k (c_ik + λ b_ik) − λ B: concave in λ; its slope at λ is the
// bytes of the λ-optimal choices minus B. Bisection on the slope's sign change (in log
// space), the best value seen kept: every λ gives a valid bound.
double lagrangian_bound(const std::vector<KnapsackItem>& items, uint64_t budget) {
  auto eval = [&](double lam, double* used) {
    double value = -lam * static_cast<double>(budget);
    *used = 0;
    for (const KnapsackItem& it : items) {
      size_t best = 0;
      for (size_t k = 1; k < it.cost.size(); ++k) {
        const double a = it.cost[k] + lam * static_cast<double>(it.bytes[k]), b = it.cost[best] + lam * static_cast<double>(it.bytes[best]);
        if (a < b || (a == b && it.bytes[k] < it.bytes[best])) best = k;
      }
      value += it.cost[best] + lam * static_cast<double>(it.bytes[best]);
      *used += static_cast<double>(it.bytes[best]);
    }
    return value;
  };
  double used = 0;
  double bound = eval(0.0, &used);
  if (used <= static_cast<double>(budget)) return bound;
  double lo = 1e-30, hi = 1e-30;
  while (hi < 1e30) {
    bound = std::max(bound, eval(hi, &used));
    if (used <= static_cast<double>(budget)) break;
    lo = hi;
    hi *= 4;
  }
  for (int i = 0; i < 200; ++i) {
    const double mid = std::sqrt(lo * hi);
    bound = std::max(bound, eval(mid, &used));
    (used > static_cast<double>(budget) ? lo : hi) = mid;
  }
  return bound;
}

}  // namespace

Allocation allocate_knapsack(const std::vector<KnapsackItem>& items, uint64_t budget, uint64_t max_cells) {
  Allocation a;
  if (items.empty()) return a;
  uint64_t smallest = 0, g = 0;
  for (const KnapsackItem& it : items) {
    if (it.bytes.empty() || it.bytes.size() != it.cost.size() || it.bytes.size() > 255) throw Error("a knapsack item needs 1 to 255 candidates");
    smallest += *std::min_element(it.bytes.begin(), it.bytes.end());
    for (uint64_t b : it.bytes) g = std::gcd(g, b);
  }
  if (smallest > budget) {
    throw Error("the size target is below the smallest plan", {.value = std::to_string(budget) + " bytes < " + std::to_string(smallest)});
  }
  const uint64_t n = items.size(), per_item = std::max<uint64_t>(2, max_cells / n);
  a.unit = std::max<uint64_t>(g, 1);
  a.exact = budget / a.unit + 1 <= per_item;
  if (!a.exact) a.unit = budget / (per_item - 1) + 1;  // sizes rounded up to it: still within budget
  auto units = [&](uint64_t b) { return (b + a.unit - 1) / a.unit; };
  const uint64_t W = budget / a.unit;
  // best[w]: the least cost of the items so far in at most w units; pick[i][w] its choice.
  std::vector<double> best(W + 1, 0.0), next(W + 1);
  std::vector<uint8_t> pick(n * (W + 1), 255);
  for (uint64_t i = 0; i < n; ++i) {
    const KnapsackItem& it = items[i];
    std::fill(next.begin(), next.end(), kInf);
    for (size_t k = 0; k < it.bytes.size(); ++k) {
      const uint64_t w = units(it.bytes[k]);
      for (uint64_t cap = w; cap <= W; ++cap) {
        const double c = best[cap - w] + it.cost[k];
        if (c < next[cap]) {
          next[cap] = c;
          pick[i * (W + 1) + cap] = static_cast<uint8_t>(k);
        }
      }
    }
    std::swap(best, next);
  }
  a.choice.resize(n);
  if (std::isfinite(best[W])) {
    uint64_t cap = W;
    for (uint64_t i = n; i-- > 0;) {
      const uint8_t k = pick[i * (W + 1) + cap];
      a.choice[i] = k;
      cap -= units(items[i].bytes[k]);
    }
  } else {  // rounded sizes overfill a budget this close to the smallest plan: start from it
    for (uint64_t i = 0; i < n; ++i) {
      a.choice[i] = static_cast<size_t>(std::min_element(items[i].bytes.begin(), items[i].bytes.end()) - items[i].bytes.begin());
    }
  }
  if (!a.exact) {  // what the rounding left: the best single changes that still fit, in exact bytes
    uint64_t used = 0;
    for (uint64_t i = 0; i < n; ++i) used += items[i].bytes[a.choice[i]];
    while (true) {
      double gain = 0;
      uint64_t bi = 0, bk = 0;
      for (uint64_t i = 0; i < n; ++i) {
        const size_t c = a.choice[i];
        for (size_t k = 0; k < items[i].bytes.size(); ++k) {
          const double g = items[i].cost[c] - items[i].cost[k];
          if (g > gain && used - items[i].bytes[c] + items[i].bytes[k] <= budget) {
            gain = g;
            bi = i;
            bk = k;
          }
        }
      }
      if (gain <= 0) break;
      used = used - items[bi].bytes[a.choice[bi]] + items[bi].bytes[bk];
      a.choice[bi] = bk;
    }
  }
  for (uint64_t i = 0; i < n; ++i) {
    a.bytes += items[i].bytes[a.choice[i]];
    a.cost += items[i].cost[a.choice[i]];
  }
  a.lower_bound = std::min(a.cost, lagrangian_bound(items, budget));
  return a;
}

}  // namespace lowbit
