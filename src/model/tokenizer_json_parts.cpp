// Shared tokenizer.json component plumbing (see tokenizer_json_parts.h).
#include "model/tokenizer_json_parts.h"

#include "lowbit/error.h"

namespace lowbit {
namespace {

void flatten_into(const JsonObject& c, const char* list_key, std::vector<JsonObject>& out) {
  if (c.get_string("type") != "Sequence") {
    out.push_back(c);
    return;
  }
  const Json& list = c.get_array(list_key);
  for (size_t i = 0; i < list.size(); ++i) flatten_into(c.element(list, list_key, i), list_key, out);
}

}  // namespace

std::vector<JsonObject> flatten_components(const JsonObject& root, const char* key, const char* list_key) {
  std::vector<JsonObject> out;
  if (const auto c = root.find_object(key)) flatten_into(*c, list_key, out);
  return out;
}

PatternSpec read_pattern(const JsonObject& component) {
  const JsonObject p = component.get_object("pattern");
  if (p.has("Regex")) return {true, p.get_string("Regex")};
  if (p.has("String")) return {false, p.get_string("String")};
  p.fail("String", "a pattern must be {\"String\": ...} or {\"Regex\": ...}", &p.json());
}

}  // namespace lowbit
