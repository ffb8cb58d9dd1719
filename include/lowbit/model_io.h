// Reading models from any supported source and writing them. Not the GGUF byte format
// itself (gguf.h).
#pragma once

#include <string>

#include "lowbit/model.h"

namespace lowbit {

struct LoadOptions {
  std::string tokenizer_path;  // llama2.c checkpoints: tokenizer .bin (default: tok*.bin beside it)
};

// path: a Hugging Face folder (config.json + safetensors), a .gguf file, or a llama2.c
// checkpoint. Throws Error naming the file and field on any problem.
Model load_model(const std::string& path, const LoadOptions& options = {});

Model load_llama2c(const std::string& path, const std::string& tokenizer_path);
Model load_hf_folder(const std::string& dir);
// A Hugging Face config.json as lowbit's ModelConfig (validated; unsupported fields refused).
ModelConfig read_hf_config(const std::string& path);
Model load_gguf_model(const std::string& path);

struct GgufWriteOptions {
  std::string name;          // general.name (default: the source's file name)
  int32_t file_type = -1;    // general.file_type (llama_ftype); -1: from the weights' formats
};

// Writes `model` as a GGUF v3 file llama.cpp loads: llama metadata, the tokenizer, every
// weight in its format (which must have a GGUF type id), q/k rows permuted to GGUF's
// adjacent-pair RoPE when the model uses rotate-half. Atomic.
void save_gguf(const Model& model, const std::string& path, const GgufWriteOptions& options = {});

// A copy of `model` whose matrices are stored in `format` and whose norms in f32 (also when
// the source stores them in f16 or bf16, as some Hugging Face checkpoints do).
Model convert_weights(const Model& model, const Format& format);

// The row order that turns Hugging Face's rotate-half q/k rows into GGUF's adjacent
// pairs: new row (h, i, j) <- old row (h, j, i) for head h, pair i, member j
// (w.reshape(n_head, 2, rows/n_head/2, cols).swapaxes(1, 2)). Returns old index per new row.
std::vector<int64_t> rope_permutation(int64_t rows, int64_t n_heads);

}  // namespace lowbit
