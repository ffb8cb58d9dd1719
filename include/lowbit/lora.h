// LoRA adapters in PEFT's layout: a folder with adapter_config.json and
// adapter_model.safetensors, tensors base_model.model.MODULE.lora_A.weight (rank, in) and
// ...lora_B.weight (out, rank), MODULE as in the Hugging Face checkpoint
// (model.layers.0.self_attn.q_proj); out rows in Hugging Face's q/k order.
#pragma once

#include <string>
#include <vector>

#include "lowbit/model.h"
#include "lowbit/train.h"

namespace lowbit {

struct LoraAdapter {
  int64_t rank = 0;
  float alpha = 0;
  std::string base_format;  // the format the base was quantized to for training ("" unknown)
  struct Pair {
    std::string module;
    int64_t rows = 0, cols = 0;  // the adapted linear's (out, in)
    std::vector<float> a, b;     // a: (rank, cols), b: (rows, rank)
  };
  std::vector<Pair> pairs;
  std::string source;  // the folder
};

// The trained adapters of `model` (add_lora) into a new folder `dir`; base_format (the
// format the frozen base was rounded to) is kept in adapter_config.json as
// "lowbit_base_format".
void save_peft_adapter(TrainModel& model, const std::string& dir, const std::string& base_model, const std::string& base_format);
// Errors name the folder, file and tensor: a missing or malformed config, rank 0, a
// tensor of the wrong shape, an A without its B.
LoraAdapter load_peft_adapter(const std::string& dir);
// W ← W + (alpha / rank) · B · A for every adapted linear of `model` (the weight becomes
// f32, owned); an Error naming the adapter and tensor when a module is not a decoder linear
// of the model or its shape differs.
void merge_lora(Model& model, const LoraAdapter& adapter);
// The decoder linears of `model` rounded to `format` and decoded back to f32 (QLoRA's frozen
// base: the values the adapters train on and merge into). Rows that do not fit the format
// are an Error naming the tensor.
void round_decoder_linears(Model& model, const Format& format);
// --lora DIR: the adapter merged into `model` in memory; when the adapter records the base
// format it trained on and the model's decoder linears are float, they are rounded to it
// first (the function the adapter was trained with).
void apply_lora_adapter(Model& model, const std::string& dir);

}  // namespace lowbit
