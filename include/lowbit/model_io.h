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
Model load_gguf_model(const std::string& path);

}  // namespace lowbit
