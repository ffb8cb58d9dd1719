// A Hugging Face tokenizer.json for any lowbit vocabulary, so a folder lowbit writes from a
// GGUF or llama2.c model loads in transformers (PreTrainedTokenizerFast):
//   - a vocabulary that came from a tokenizer.json (lowbit.tokenizer.pipeline) gets its own
//     normalizer, pre-tokenizer, decoder, BPE options and added tokens back;
//   - a GGUF "gpt2" vocabulary gets the pipeline llama.cpp runs for its tokenizer.ggml.pre;
//   - a SentencePiece-style "llama" vocabulary gets the BPE form transformers' own
//     converter gives Llama tokenizers (Prepend/Replace normalizer, byte fallback, merges
//     of every pair of pieces whose join is a piece, ordered by the joined piece's score).
#pragma once

#include "core/json_fields.h"
#include "lowbit/tokenizer.h"

namespace lowbit {

Json tokenizer_json_of(const GgufVocab& v, const std::string& source);
// tokenizer_config.json and generation_config.json beside it.
Json tokenizer_config_of(const GgufVocab& v);
Json generation_config_of(const GgufVocab& v);

}  // namespace lowbit
