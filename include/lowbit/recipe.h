// Recipes: which format each tensor of a model is stored in, as data. A recipe is a base
// format and an ordered list of rules {tensor pattern, layers, when} -> format; the first
// rule that matches a tensor decides, else the base format. Norm vectors always stay f32.
// `when` names model traits from a table (GQA ratio, layer count, expert count, imatrix
// present), so llama.cpp's shape-dependent choices (llama_tensor_get_type) are data too.
// Built-ins follow llama.cpp's mixes; more come from JSON files. When a tensor's rows do
// not fit the chosen format, the format's fallback chain (data, below) picks the best one
// that fits, and the choice is reported.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "lowbit/format.h"

namespace lowbit {

struct RecipeRule {
  std::string tensor;  // glob on the GGUF name's tensor part: "attn_v", "ffn_*", "output", "token_embd"
  std::string layers;  // "" = any; "3", "0-2,7", "more-bits" (llama.cpp's use_more_bits),
                       // "first:1/16" (layer < n/16), "last:1/8" (layer >= n - n/8)
  std::string format;  // a format name, or "keep" (leave the tensor as it is stored)
  std::string when;    // "" = always; else comma-separated trait names, each may start with '!'
                       // (all must hold): see recipe_conditions()
  std::string method;  // "" = the method given to quantize; else a method of the table ("rtn", "gptq")
  std::map<std::string, std::string> options;  // that method's options for the matched tensors
};

struct Recipe {
  std::string name;
  std::string description;
  std::string base;  // format for tensors no rule matches
  std::vector<RecipeRule> rules;
  int32_t file_type = -1;  // llama.cpp's llama_ftype for general.file_type; -1: from the main format
};

// What rules may depend on besides the tensor: the model's shape and the quantize inputs.
struct ModelTraits {
  int64_t n_layers = 1;
  int64_t n_heads = 1;
  int64_t n_kv_heads = 1;
  int64_t n_experts = 0;
  bool has_imatrix = false;
};

struct RecipeCondition {
  const char* name;
  const char* meaning;
  bool (*holds)(const ModelTraits&);
};
const std::vector<RecipeCondition>& recipe_conditions();

struct TensorChoice {
  const Format* format;    // nullptr: keep as stored
  std::string reason;      // which rule (or "base") chose it, and any fallback
  bool fell_back = false;
  std::string method;      // the rule's method ("" = quantize's default)
  std::map<std::string, std::string> options;
};

const std::vector<Recipe>& builtin_recipes();
// A built-in name, or a path to a JSON file {"name", "description", "base", "rules": [...]};
// throws Error naming the file and field when malformed, or the unknown name.
Recipe load_recipe(const std::string& name_or_path);
// A recipe storing every matrix in one format ("pure:FORMAT" or just FORMAT).
Recipe single_format_recipe(const std::string& format);

// layer: -1 for tensors outside the blocks (token_embd, output).
TensorChoice choose_format(const Recipe& recipe, const std::string& tensor_name, int64_t layer,
                           const ModelTraits& model, int64_t cols);

// The formats tried, in order, when `f` does not fit a row (documented in docs/RECIPES.md).
std::vector<const Format*> fallback_chain(const Format& f);

std::string describe_recipe(const Recipe& r);  // the rule list, for `lowbit recipes`

}  // namespace lowbit
