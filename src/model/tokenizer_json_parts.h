// Shared by the tokenizer.json component builders (normalizers, pre-tokenizers, decoders):
// a component field that may be null, one component, or a "Sequence" of them (nested
// Sequences included), flattened in order.
#pragma once

#include <vector>

#include "core/json_fields.h"

namespace lowbit {

// The components at root[key]; a Sequence lists them under list_key ("normalizers",
// "pretokenizers", "decoders"). Empty when the field is absent or null.
std::vector<JsonObject> flatten_components(const JsonObject& root, const char* key, const char* list_key);

// "String" or "Regex" of a Split/Replace pattern object.
struct PatternSpec {
  bool regex = false;
  std::string text;
};
PatternSpec read_pattern(const JsonObject& component);

}  // namespace lowbit
