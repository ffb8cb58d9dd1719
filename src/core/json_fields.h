// Reading JSON from untrusted files: parsing with a nesting limit, bounded excerpts for
// error messages, and typed field access whose errors name the file and the key. Every
// JSON reader (config.json, tokenizer.json, recipes, safetensors headers, checkpoint
// configs) goes through this; none calls dump() on untrusted values or get<T>() unchecked.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace lowbit {

using Json = nlohmann::json;

inline constexpr int kMaxJsonDepth = 64;  // real configs and tokenizers nest < 10 deep

// Called for every key of the top-level object while parsing (safetensors uses it to find
// duplicate tensor names, which the parsed object would silently merge).
using TopLevelKeyHook = std::function<void(const std::string& key)>;

// Parses `text`; throws Error naming `file` on invalid JSON or nesting deeper than
// kMaxJsonDepth.
Json parse_json(std::string_view text, const std::string& file, const TopLevelKeyHook& on_key = nullptr);
Json read_json_file(const std::string& path);  // a missing file is an Error too

// At most `max_chars` of the value's JSON text; containers are shown to a bounded depth.
// Never recurses over the whole of an untrusted value.
std::string json_excerpt(const Json& v, size_t max_chars = 80);
const char* json_type_name(const Json& v);

// An object read from `file` at the dotted location `where` ("" for the root, else
// "model" or "rules[2]"). Each getter checks the type (and range) and throws Error naming
// the file and "where.key". An absent key takes the fallback (without one it is an error);
// a key present with null is a type error, since a wrong type is never guessed at. Where
// null means "unset" (Hugging Face's optional fields), test has() first.
class JsonObject {
 public:
  JsonObject(const Json& j, std::string file, std::string where = "");

  bool has(std::string_view key) const;  // present and not null
  const Json* find(std::string_view key) const;  // nullptr when absent or null
  std::string field(std::string_view key) const;  // "where.key", for messages

  int64_t get_int(std::string_view key, std::optional<int64_t> fallback = std::nullopt,
                  int64_t min = std::numeric_limits<int64_t>::min(),
                  int64_t max = std::numeric_limits<int64_t>::max()) const;
  double get_number(std::string_view key, std::optional<double> fallback = std::nullopt) const;
  bool get_bool(std::string_view key, std::optional<bool> fallback = std::nullopt) const;
  std::string get_string(std::string_view key, std::optional<std::string> fallback = std::nullopt) const;
  const Json& get_array(std::string_view key) const;   // required
  JsonObject get_object(std::string_view key) const;   // required
  std::optional<JsonObject> find_object(std::string_view key) const;  // absent/null: nullopt

  // An element of an array field, as an object: where = "key[i]".
  JsonObject element(const Json& array, std::string_view key, size_t i) const;
  // A string element of an array field.
  std::string string_element(const Json& array, std::string_view key, size_t i) const;

  [[noreturn]] void fail(std::string_view key, const std::string& message, const Json* value = nullptr) const;

  const Json& json() const { return *j_; }
  const std::string& file() const { return file_; }
  const std::string& where() const { return where_; }

 private:
  const Json* present(std::string_view key) const;  // absent: nullptr; null counts as present
  const Json& require(std::string_view key) const;

  const Json* j_;
  std::string file_;
  std::string where_;
};

}  // namespace lowbit
