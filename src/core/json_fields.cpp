// JSON from untrusted files (json_fields.h): depth-limited parsing, bounded excerpts and
// typed field access with errors that name the file and the key.
#include "core/json_fields.h"

#include "lowbit/error.h"
#include "lowbit/mapped_file.h"

#include <filesystem>

namespace lowbit {
namespace {

void append_excerpt(const Json& v, std::string& out, size_t max_chars, int depth) {
  if (out.size() >= max_chars) return;
  if (v.is_array() || v.is_object()) {
    if (depth >= 3) {
      out += v.is_array() ? "[...]" : "{...}";
      return;
    }
    out += v.is_array() ? '[' : '{';
    size_t k = 0;
    for (auto it = v.begin(); it != v.end(); ++it, ++k) {
      if (out.size() >= max_chars) break;
      if (k) out += ", ";
      if (v.is_object()) out += Json(it.key()).dump() + ": ";
      append_excerpt(*it, out, max_chars, depth + 1);
    }
    out += v.is_array() ? ']' : '}';
    return;
  }
  out += v.dump(-1, ' ', false, Json::error_handler_t::replace);  // a scalar: flat
}

}  // namespace

Json parse_json(std::string_view text, const std::string& file, const TopLevelKeyHook& on_key) {
  auto callback = [&](int depth, Json::parse_event_t event, Json& parsed) {
    if ((event == Json::parse_event_t::object_start || event == Json::parse_event_t::array_start) &&
        depth >= kMaxJsonDepth) {
      throw Error("JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels", {.file = file});
    }
    if (on_key && event == Json::parse_event_t::key && depth == 1) on_key(parsed.get<std::string>());
    return true;
  };
  try {
    return Json::parse(text.begin(), text.end(), callback);
  } catch (const Json::exception& e) {
    throw Error(std::string("not valid JSON: ") + e.what(), {.file = file});
  }
}

Json read_json_file(const std::string& path) {
  if (!std::filesystem::exists(path)) throw Error("missing file", {.file = path});
  const MappedFile f(path);
  const auto b = f.bytes();
  return parse_json(std::string_view(reinterpret_cast<const char*>(b.data()), b.size()), path);
}

std::string json_excerpt(const Json& v, size_t max_chars) {
  std::string out;
  append_excerpt(v, out, max_chars, 0);
  if (out.size() > max_chars) out = out.substr(0, max_chars) + "...";
  return out;
}

const char* json_type_name(const Json& v) { return v.type_name(); }

JsonObject::JsonObject(const Json& j, std::string file, std::string where)
    : j_(&j), file_(std::move(file)), where_(std::move(where)) {
  if (!j.is_object()) {
    throw Error((where_.empty() ? std::string("the top level") : "'" + where_ + "'") + " must be a JSON object, not " +
                    json_type_name(j),
                {.file = file_, .value = json_excerpt(j)});
  }
}

std::string JsonObject::field(std::string_view key) const {
  return where_.empty() ? std::string(key) : where_ + "." + std::string(key);
}

const Json* JsonObject::find(std::string_view key) const {
  const auto it = j_->find(key);
  if (it == j_->end() || it->is_null()) return nullptr;
  return &*it;
}

bool JsonObject::has(std::string_view key) const { return find(key) != nullptr; }

void JsonObject::fail(std::string_view key, const std::string& message, const Json* value) const {
  throw Error("field '" + field(key) + "' " + message, {.file = file_, .value = value ? json_excerpt(*value) : ""});
}

const Json* JsonObject::present(std::string_view key) const {
  const auto it = j_->find(key);
  return it == j_->end() ? nullptr : &*it;
}

const Json& JsonObject::require(std::string_view key) const {
  const Json* v = present(key);
  if (v == nullptr) throw Error("missing field '" + field(key) + "'", {.file = file_});
  return *v;
}

int64_t JsonObject::get_int(std::string_view key, std::optional<int64_t> fallback, int64_t min, int64_t max) const {
  const Json* v = present(key);
  if (v == nullptr && fallback) return *fallback;
  v = &require(key);
  if (!v->is_number_integer()) fail(key, std::string("must be an integer, not ") + json_type_name(*v), v);
  if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    fail(key, "is out of range", v);
  }
  const int64_t x = v->get<int64_t>();
  if (x < min || x > max) {
    fail(key, "is out of range [" + std::to_string(min) + ", " + std::to_string(max) + "]", v);
  }
  return x;
}

double JsonObject::get_number(std::string_view key, std::optional<double> fallback) const {
  const Json* v = present(key);
  if (v == nullptr && fallback) return *fallback;
  v = &require(key);
  if (!v->is_number()) fail(key, std::string("must be a number, not ") + json_type_name(*v), v);
  return v->get<double>();
}

bool JsonObject::get_bool(std::string_view key, std::optional<bool> fallback) const {
  const Json* v = present(key);
  if (v == nullptr && fallback) return *fallback;
  v = &require(key);
  if (!v->is_boolean()) fail(key, std::string("must be true or false, not ") + json_type_name(*v), v);
  return v->get<bool>();
}

std::string JsonObject::get_string(std::string_view key, std::optional<std::string> fallback) const {
  const Json* v = present(key);
  if (v == nullptr && fallback) return *fallback;
  v = &require(key);
  if (!v->is_string()) fail(key, std::string("must be a string, not ") + json_type_name(*v), v);
  return v->get<std::string>();
}

const Json& JsonObject::get_array(std::string_view key) const {
  const Json& v = require(key);
  if (!v.is_array()) fail(key, std::string("must be an array, not ") + json_type_name(v), &v);
  return v;
}

JsonObject JsonObject::get_object(std::string_view key) const { return JsonObject(require(key), file_, field(key)); }

std::optional<JsonObject> JsonObject::find_object(std::string_view key) const {
  const Json* v = find(key);
  if (v == nullptr) return std::nullopt;
  return JsonObject(*v, file_, field(key));
}

JsonObject JsonObject::element(const Json& array, std::string_view key, size_t i) const {
  return JsonObject(array.at(i), file_, field(key) + "[" + std::to_string(i) + "]");
}

std::string JsonObject::string_element(const Json& array, std::string_view key, size_t i) const {
  const Json& v = array.at(i);
  if (!v.is_string()) {
    throw Error("'" + field(key) + "[" + std::to_string(i) + "]' must be a string, not " + json_type_name(v),
                {.file = file_, .value = json_excerpt(v)});
  }
  return v.get<std::string>();
}

}  // namespace lowbit
