// GGUF's tokenizer.ggml.pre names (llama.cpp's pre-tokenizer types) against tokenizer.json
// pipelines: which name makes llama.cpp split a byte-level BPE text as a given
// tokenizer.json does, and the pipeline lowbit runs for a GGUF that only names one.
#pragma once

#include <string>

#include "core/json_fields.h"

namespace lowbit {

// The tokenizer.ggml.pre name whose splitting equals `pipeline`'s (see BpeSpec::pipeline),
// or "default" with a warning when llama.cpp has none that does.
std::string gguf_pre_for_pipeline(const Json& pipeline);

// The pipeline that reproduces llama.cpp's splitting for a "gpt2"-model GGUF whose
// tokenizer.ggml.pre is `pre` ("" when the key is absent: llama.cpp's "default"). An
// unknown name is an Error naming `file` and the value.
Json pipeline_for_gguf_pre(const std::string& pre, const std::string& file);

}  // namespace lowbit
