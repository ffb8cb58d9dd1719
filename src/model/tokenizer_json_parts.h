// Shared by the tokenizer.json component builders (normalizers, pre-tokenizers, decoders):
// a component field that may be null, one component, or a "Sequence" of them (nested
// Sequences included), flattened in order.
#pragma once

#include <string>
#include <vector>

#include "core/json_fields.h"
#include "lowbit/error.h"

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

// The chain of components at root[key] built through `table` (rows {const char* type;
// Builder build;}): an unknown type is refused naming the file, the field and the value.
template <typename Component, typename Entry, size_t N>
std::vector<Component> build_chain(const JsonObject& root, const char* key, const char* list_key, const Entry (&table)[N]) {
  std::vector<Component> chain;
  for (const JsonObject& c : flatten_components(root, key, list_key)) {
    const std::string type = c.get_string("type");
    const Entry* found = nullptr;
    for (const Entry& e : table) {
      if (type == e.type) found = &e;
    }
    if (found == nullptr) {
      throw Error("unsupported tokenizer.json " + std::string(key) + " '" + type + "' at '" + c.where() + "'",
                  {.file = c.file(), .value = json_excerpt(c.json())});
    }
    chain.push_back(found->build(c));
  }
  return chain;
}

}  // namespace lowbit
