// Loading and running one GPTQ case file (see lowbit/gptq_case.h).
#include "lowbit/gptq_case.h"

#include <chrono>
#include <cmath>

#include "lowbit/error.h"
#include "lowbit/hessian.h"
#include "lowbit/safetensors.h"

namespace lowbit {
namespace {

int64_t meta_int(const SafetensorsFile& f, const std::string& key, int64_t fallback) {
  const auto it = f.metadata().find(key);
  if (it == f.metadata().end()) return fallback;
  try {
    size_t used = 0;
    const int64_t v = std::stoll(it->second, &used);
    if (used == it->second.size()) return v;
  } catch (const std::exception&) {
  }
  throw Error("metadata '" + key + "' is not an integer", {.file = f.path(), .value = it->second.substr(0, 40)});
}

double meta_double(const SafetensorsFile& f, const std::string& key, double fallback) {
  const auto it = f.metadata().find(key);
  if (it == f.metadata().end()) return fallback;
  try {
    size_t used = 0;
    const double v = std::stod(it->second, &used);
    if (used == it->second.size() && std::isfinite(v)) return v;
  } catch (const std::exception&) {
  }
  throw Error("metadata '" + key + "' is not a number", {.file = f.path(), .value = it->second.substr(0, 40)});
}

std::vector<float> matrix(const SafetensorsFile& f, const char* name, int64_t rows, int64_t cols, bool required) {
  const TensorView* t = f.find(name);
  if (t == nullptr) {
    if (required) throw Error("tensor missing", {.file = f.path(), .tensor = name});
    return {};
  }
  if (t->shape.size() != 2 || (rows >= 0 && t->shape[0] != rows) || t->shape[1] != cols) {
    std::string shape;
    for (int64_t d : t->shape) shape += (shape.empty() ? "" : ", ") + std::to_string(d);
    throw Error("tensor has shape [" + shape + "], expected [" + (rows >= 0 ? std::to_string(rows) : "N") + ", " +
                    std::to_string(cols) + "]",
                {.file = f.path(), .tensor = name});
  }
  return f.to_f32(*t);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

GptqCase load_gptq_case(const std::string& path) {
  const SafetensorsFile f(path);
  GptqCase c;
  c.path = path;
  const TensorView& w = f.tensor("W");
  if (w.shape.size() != 2) throw Error("W must be a matrix", {.file = path, .tensor = "W"});
  c.rows = w.shape[0];
  c.cols = w.shape[1];
  c.w = matrix(f, "W", c.rows, c.cols, true);
  c.x = matrix(f, "X", -1, c.cols, false);
  c.h = matrix(f, "H", c.cols, c.cols, false);
  c.q_reference = matrix(f, "Q", c.rows, c.cols, false);
  c.rtn_reference = matrix(f, "RTN", c.rows, c.cols, false);
  if (c.x.empty() && c.h.empty()) throw Error("the file holds neither X nor H", {.file = path});
  c.tokens = c.x.empty() ? meta_int(f, "tokens", 0) : static_cast<int64_t>(c.x.size()) / c.cols;
  c.bits = static_cast<int>(meta_int(f, "bits", 4));
  const int64_t group = meta_int(f, "group_size", -1);
  if (c.bits < 2 || c.bits > 8) throw Error("metadata 'bits' must be 2..8", {.file = path, .value = std::to_string(c.bits)});
  if (group == 0 || group < -1 || (group > 0 && c.cols % group != 0)) {
    throw Error("metadata 'group_size' must be -1 or divide the columns", {.file = path, .value = std::to_string(group)});
  }
  c.group_size = group < 0 ? 0 : group;
  c.symmetric = meta_int(f, "sym", 0) != 0;
  c.options.act_order = meta_int(f, "act_order", 0) != 0;
  c.options.static_groups = meta_int(f, "static_groups", 0) != 0;
  c.options.block_size = meta_int(f, "blocksize", 128);
  c.options.percdamp = meta_double(f, "percdamp", 0.01);
  if (c.options.block_size <= 0) throw Error("metadata 'blocksize' must be positive", {.file = path});
  c.reference_error_gptq = meta_double(f, "output_sq_err_gptq", -1);
  c.reference_error_rtn = meta_double(f, "output_sq_err_rtn", -1);
  return c;
}

GptqCaseResult run_gptq_case(const GptqCase& c) {
  GptqCaseResult r;
  std::vector<double> h;
  if (!c.h.empty()) {
    h.assign(c.h.begin(), c.h.end());
  } else {
    const auto t0 = std::chrono::steady_clock::now();
    HessianAccumulator acc(c.cols);
    for (int64_t t = 0; t < c.tokens; t += 256) acc.add(c.x.data() + t * c.cols, std::min<int64_t>(256, c.tokens - t));
    h = acc.take_hessian();
    r.seconds_hessian = seconds_since(t0);
  }
  GptqMinMaxQuantizer quantizer(c.bits, c.group_size, c.symmetric, c.rows);
  const auto t0 = std::chrono::steady_clock::now();
  GptqResult g = gptq_quantize(c.w, c.rows, c.cols, h, quantizer, c.options);
  r.seconds_gptq = seconds_since(t0);
  r.percdamp = g.percdamp;
  r.dead_columns = g.dead_columns;
  r.q = std::move(g.q);
  const std::vector<float> rtn = quantizer.rtn(c.w, c.cols);
  if (!c.q_reference.empty()) {
    int64_t same = 0;
    for (size_t i = 0; i < r.q.size(); ++i) {
      const float a = r.q[i], b = c.q_reference[i];
      same += std::fabs(a - b) <= 1e-5f * std::max(std::fabs(a), std::fabs(b));
    }
    r.agreement = static_cast<double>(same) / static_cast<double>(r.q.size());
  }
  if (!c.x.empty()) {
    r.error_gptq = output_sq_error(c.x, c.tokens, c.w, r.q, c.rows, c.cols);
    r.error_rtn = output_sq_error(c.x, c.tokens, c.w, rtn, c.rows, c.cols);
  } else {
    // ‖X Dᵀ‖² = N/2 · Σ_r d_r H d_rᵀ with H = 2/N·XᵀX.
    for (const std::vector<float>* q : {static_cast<const std::vector<float>*>(&r.q), &rtn}) {
      double sum = 0;
      for (int64_t row = 0; row < c.rows; ++row) {
        for (int64_t i = 0; i < c.cols; ++i) {
          const double di = (*q)[row * c.cols + i] - c.w[row * c.cols + i];
          if (di == 0) continue;
          for (int64_t j = 0; j < c.cols; ++j) sum += di * c.h[i * c.cols + j] * ((*q)[row * c.cols + j] - c.w[row * c.cols + j]);
        }
      }
      (q == &r.q ? r.error_gptq : r.error_rtn) = sum * static_cast<double>(c.tokens) / 2;
    }
  }
  return r;
}

}  // namespace lowbit
