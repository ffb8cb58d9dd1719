// Per-tensor sensitivity (src/quant/mix/): for every matrix of a model and every candidate
// format, what quantizing that matrix alone costs, by a proxy and by measurement:
//   - proxy: the output-weighted error Σ_r Σ_c (W − Q(W))²_rc · h_c / n, h_c = Σ x_c² over
//     the n calibration tokens of the matrix's input (the Hessian's diagonal, as an
//     imatrix); token_embd weighs row r by how often token r occurs (tied to the head: plus
//     the head's h_c);
//   - measured: the mean KLD of the model with only that matrix quantized against the
//     float model on the calibration windows (a tied embedding: in both its uses). Block inputs are cached from one float pass,
//     so a matrix of block l runs blocks l.. only.
// Each candidate is rounded as `quantize` would: to nearest (no importance), or with
// method "gptq" each block linear by GPTQ into the format (its Hessian from the block's
// cached float inputs; formats without GPTQ's rounding steps, token_embd and output: to
// nearest).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "lowbit/calibration.h"
#include "lowbit/model.h"
#include "lowbit/stats_checkpoint.h"

namespace lowbit {

struct SensitivityChoice {
  std::string format;
  uint64_t bytes = 0;
  double proxy = 0;
  double relative = 0;  // proxy / (Σ_r Σ_c W²_rc h_c / n): the error relative to the matrix's output
  double kld = -1;  // -1: not measured
};

struct TensorSensitivity {
  std::string name;  // GGUF name: token_embd.weight, blk.N.attn_q.weight, output.weight
  int64_t layer = -1, rows = 0, cols = 0;
  std::vector<SensitivityChoice> choices;  // the candidates that fit (each a fallback's first fit)
};

struct SensitivityReport {
  std::string model;        // the model's path
  std::string fingerprint;  // model_fingerprint of the model measured
  std::string calib;
  std::string method = "rtn";
  int64_t samples = 0, length = 0;
  bool measured = false;
  std::vector<std::string> formats;  // candidates asked for
  std::vector<TensorSensitivity> tensors;
  // Spearman rank correlation against measured KLD over the tensors, per format (all
  // tensors that format fits), when measured: "FORMAT" of the proxy, "FORMAT relative" of
  // the relative proxy.
  std::vector<std::pair<std::string, double>> rank_correlation;
};

struct SensitivityOptions {
  std::vector<std::string> formats{"q2_k", "q3_k", "q4_k", "q5_k", "q6_k", "q8_0", "iq4_xs"};
  CalibrationOptions calib{.samples = 8, .length = 256, .seed = 0};
  std::string method = "rtn";  // or "gptq"
  bool measure = true;
  // (step done, steps, what)
  std::function<void(int64_t, int64_t, const std::string&)> progress;
  // The matrices measured so far, saved as they finish (lowbit/stats_checkpoint.h) and
  // continued from with resume: the report is the uninterrupted run's. resume_note: what
  // was found.
  StatsCheckpoint checkpoint;
  std::string* resume_note = nullptr;
};

// A string that names a model's shape and values (architecture, sizes, every matrix's name
// and shape, and a checksum of its first row): two different models never share one.
std::string model_fingerprint(const Model& m);

// An Error names the calibration file or an unknown format.
SensitivityReport measure_sensitivity(const Model& m, const std::string& calib_path, const SensitivityOptions& o);

// sens.json: written atomically; read back refusing a file whose fingerprint is not m's.
void save_sensitivity(const SensitivityReport& r, const std::string& path);
SensitivityReport load_sensitivity(const std::string& path, const Model& m);

// Spearman's rank correlation of a and b (average ranks for ties).
double spearman(const std::vector<double>& a, const std::vector<double>& b);

}  // namespace lowbit
