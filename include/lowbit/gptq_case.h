// One GPTQ problem in a safetensors file, in the layout of ../shared/testdata/gptq: W
// (rows, cols) with X (N, cols) and/or H (cols, cols), optional reference results Q and
// RTN, options in __metadata__ (bits, group_size, sym, act_order, static_groups,
// blocksize, percdamp). Runs lowbit's GPTQ on it and compares; used by the oracle test
// and by bench/gptq_layer.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lowbit/gptq.h"

namespace lowbit {

struct GptqCase {
  std::string path;
  int64_t rows = 0, cols = 0, tokens = 0;
  std::vector<float> w, x, q_reference, rtn_reference;  // x, q_reference, rtn_reference may be empty
  std::vector<float> h;                                  // may be empty (then built from x)
  int bits = 4;
  int64_t group_size = 0;  // 0: per channel
  bool symmetric = false;
  GptqOptions options;
  double reference_error_gptq = -1, reference_error_rtn = -1;  // from the metadata; -1 if absent
};

// Throws Error naming the file and the tensor or metadata key when malformed.
GptqCase load_gptq_case(const std::string& path);

struct GptqCaseResult {
  double agreement = -1;      // share of elements equal to the reference Q; -1 without Q
  double error_gptq = 0;      // ‖X(Q − W)ᵀ‖² of lowbit's GPTQ
  double error_rtn = 0;       // of round-to-nearest with the same quantizer
  double seconds_hessian = 0; // building H from X (0 when H is given)
  double seconds_gptq = 0;
  double percdamp = 0;
  int64_t dead_columns = 0;
  std::vector<float> q;       // lowbit's result (rows, cols)
};

GptqCaseResult run_gptq_case(const GptqCase& c);

}  // namespace lowbit
