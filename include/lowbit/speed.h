// Speed measurements against the machine's limits: streaming read bandwidth, the int8
// dot-product peak, and a model's prefill and decode rates with the bytes each token reads.
// What `lowbit bench` prints. No timing is asserted anywhere: these only measure.
#pragma once

#include <cstdint>
#include <vector>

#include "lowbit/engine.h"
#include "lowbit/model.h"

namespace lowbit {

// Best of `reps` multithreaded reads of a `bytes` buffer (all OpenMP threads), in GB/s.
double measure_read_bandwidth(uint64_t bytes = uint64_t{1} << 30, int reps = 5);

// Int8 multiply-accumulates per second the active instruction set's dot instruction
// reaches with all threads (VPDPBUSD for avx512), in GOP/s (2 ops per MAC); 0 if the set
// has no int8 instruction.
double measure_int8_peak_gops();

struct Rate {  // tokens per second over reps
  double median = 0, min = 0, max = 0;
};

struct ModelSpeed {
  int64_t prompt_tokens = 0, generated_tokens = 0, reps = 0;
  Rate prefill, decode;
  uint64_t bytes_per_token = 0;  // weight bytes one decode step reads (linears + output)
  uint64_t kv_bytes_per_token = 0;  // the KV cache's bytes per position
};

// Runs a prompt of `prompt_tokens` random tokens, then `generated_tokens` single-token
// steps, `reps` times (plus one warm-up).
ModelSpeed measure_model_speed(const Model& model, int64_t prompt_tokens, int64_t generated_tokens, int reps,
                               const KvCacheOptions& kv = {}, const ActQuantOptions& act = {});

// The weight bytes a decode step reads: every linear of every layer and the output matrix.
uint64_t decode_bytes_per_token(const Model& model);

}  // namespace lowbit
