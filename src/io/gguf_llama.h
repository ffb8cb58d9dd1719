// Pieces of the llama GGUF mapping shared by save_gguf and the quantize pipeline.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "lowbit/gguf.h"
#include "lowbit/model.h"

namespace lowbit {

// The tokenizer.ggml.* vocabulary of a GGUF file.
GgufVocab read_gguf_vocab(const GgufFile& f);
// The q/k row order GGUF stores for this architecture: adjacent pairs (llama, permuted from
// Hugging Face) or rotate-half (NeoX RoPE: qwen2, qwen3, unpermuted).
RopeStyle gguf_rope_style(const ModelConfig& c);
// Refuses a model of an architecture without a GGUF name.
void require_gguf_block(const ModelConfig& c);
// Where q/k of `w` move when stored in `target` RoPE order while the model holds the other:
// a row order for attn_q/attn_k matrices, an element order for their biases
// (out[i] = in[order[i]]); empty when nothing moves.
std::vector<int64_t> qk_reorder(const ModelConfig& c, const Weight& w, RopeStyle target);
// bytes of order.size() equal units (rows, or a float vector's elements), unit r taken
// from unit order[r].
std::vector<uint8_t> reordered_bytes(std::span<const uint8_t> bytes, const std::vector<int64_t>& order);
// Tensors GGUF holds that are not weights of the model: rope_freqs.weight for llama3 RoPE
// scaling (written before the weights, as llama.cpp's converter does).
struct GgufExtraTensor {
  GgufTensorInfo info;
  std::vector<uint8_t> bytes;
};
std::vector<GgufExtraTensor> gguf_extra_tensors(const Model& model);
// tokenizer.ggml.* (and lowbit.tokenizer.*) keys of a vocabulary, padded to vocab_size tokens.
std::vector<GgufKeyValue> gguf_vocab_metadata(GgufVocab v, int64_t vocab_size);
// general.*, llama.* and tokenizer.ggml.* keys for `model`.
std::vector<GgufKeyValue> llama_gguf_metadata(const Model& model, const std::string& name, int32_t file_type);
// llama.cpp's llama_ftype for a model stored all in `f` (general.file_type); 0 (all f32)
// for formats without one.
int32_t llama_file_type(const Format& f);
// ggml dims of a weight: {cols, rows}, or {cols} for a vector.
std::vector<int64_t> gguf_dims(const Weight& w);

}  // namespace lowbit
