// Synthetic models of real architectures' shapes: random weights (seeded, N(0, 0.02)-like,
// the same bytes for any thread count) in one format, with a byte-level BPE vocabulary of
// the shape's size (merges included) that llama.cpp loads. For speed and memory
// measurements of models nobody has to download.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>

#include "lowbit/model.h"
#include "lowbit/tokenizer.h"

namespace lowbit {

struct SynthShape {
  std::string_view name;         // "tinyllama-1.1b"
  std::string_view description;  // what it is the shape of
  ModelConfig config;
};

// The table of shapes `lowbit synth --shape` knows.
std::span<const SynthShape> synth_shapes();
// Throws Error listing the known names when `name` is not one.
const SynthShape& synth_shape_by_name(std::string_view name);

// A byte-level BPE vocabulary of exactly `size` tokens: the 256 byte symbols, merged tokens
// (each merge's parts and result are tokens), then BOS and EOS as control tokens.
GgufVocab synth_vocab(int64_t size);

struct SynthOptions {
  std::string shape;
  std::string format = "f16";  // matrices; norms are f32
  std::string output;          // .gguf
  uint64_t seed = 1;
  int64_t layers = 0;          // > 0: this many blocks instead of the shape's (a smaller model of the same widths)
  // (tensors done, tensors, bytes written so far, tensor name)
  std::function<void(int64_t, int64_t, uint64_t, const std::string&)> progress;
};

struct SynthReport {
  int64_t parameters = 0;
  uint64_t file_bytes = 0;
  double seconds = 0;
};

// Writes the model (atomically: a temporary file renamed into place).
SynthReport synth_model(const SynthOptions& o);

}  // namespace lowbit
