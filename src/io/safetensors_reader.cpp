// safetensors reader: u64 header length, JSON header, byte buffer. Every length, offset
// and shape is checked against the bytes that exist before any tensor is handed out.
#include <algorithm>
#include <limits>
#include <set>

#include "core/json_fields.h"
#include "lowbit/checked_size.h"
#include "lowbit/error.h"
#include "lowbit/safetensors.h"

namespace lowbit {
namespace {

using json = Json;

uint64_t read_u64_le(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

std::vector<int64_t> parse_shape(const json& j, const std::string& name) {
  if (!j.is_array()) throw Error("'shape' is not an array", {.tensor = name});
  std::vector<int64_t> shape;
  for (const auto& d : j) {
    if (!d.is_number_integer() || d.get<int64_t>() < 0) {
      throw Error("shape has a dimension that is not a non-negative integer",
                  {.tensor = name, .value = json_excerpt(d)});
    }
    shape.push_back(d.get<int64_t>());
  }
  return shape;
}

}  // namespace

int64_t TensorView::numel() const { return checked_numel(shape, "element count of '" + name + "'"); }

SafetensorsFile::SafetensorsFile(const std::string& path)
    : map_(std::make_shared<MappedFile>(path)) {
  const auto bytes = map_->bytes();
  try {
    if (bytes.size() < 8) {
      throw Error("file too short for the 8-byte header length",
                  {.value = std::to_string(bytes.size()) + " bytes"});
    }
    const uint64_t header_len = read_u64_le(bytes.data());
    if (header_len > kMaxHeaderBytes) {
      throw Error("header length exceeds the 100 MB limit", {.value = std::to_string(header_len)});
    }
    if (header_len > bytes.size() - 8) {
      throw Error("header length exceeds the file size",
                  {.value = std::to_string(header_len) + " > " + std::to_string(bytes.size() - 8)});
    }
    const std::string_view text(reinterpret_cast<const char*>(bytes.data() + 8), header_len);
    std::string duplicate;
    std::set<std::string> seen;
    const json header = parse_json(text, path, [&](const std::string& key) {
      if (!seen.insert(key).second && duplicate.empty()) duplicate = key;
    });
    if (!header.is_object()) throw Error("header is not a JSON object");
    if (!duplicate.empty()) throw Error("duplicate tensor name in header", {.tensor = duplicate});

    const auto buffer = bytes.subspan(8 + header_len);
    struct Extent {
      uint64_t begin, end;
      std::string name;
    };
    std::vector<Extent> extents;
    for (const auto& [name, entry] : header.items()) {
      if (name == "__metadata__") {
        if (!entry.is_object()) throw Error("__metadata__ is not an object");
        for (const auto& [k, v] : entry.items()) {
          if (!v.is_string()) throw Error("__metadata__ value is not a string", {.value = k});
          metadata_[k] = v.get<std::string>();
        }
        continue;
      }
      if (!entry.is_object()) throw Error("tensor entry is not an object", {.tensor = name});
      if (!entry.contains("dtype") || !entry["dtype"].is_string()) {
        throw Error("missing or non-string 'dtype'", {.tensor = name});
      }
      const auto dtype_text = entry["dtype"].get<std::string>();
      const auto dtype = dtype_from_name(dtype_text);
      if (!dtype) throw Error("unknown dtype", {.tensor = name, .value = dtype_text.substr(0, 80)});
      if (!entry.contains("shape")) throw Error("missing 'shape'", {.tensor = name});
      auto shape = parse_shape(entry["shape"], name);
      const auto& off = entry.contains("data_offsets") ? entry["data_offsets"] : json();
      if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() ||
          !off[1].is_number_unsigned()) {
        throw Error("'data_offsets' is not a pair of non-negative integers",
                    {.tensor = name, .value = json_excerpt(off)});
      }
      const uint64_t begin = off[0].get<uint64_t>();
      const uint64_t end = off[1].get<uint64_t>();
      if (begin > end || end > buffer.size()) {
        throw Error("data_offsets out of range of the data buffer",
                    {.tensor = name,
                     .value = "[" + std::to_string(begin) + ", " + std::to_string(end) +
                              ") in " + std::to_string(buffer.size()) + " bytes"});
      }
      uint64_t expected = 0;
      try {
        expected = checked_mul(static_cast<uint64_t>(checked_numel(shape, "the element count")), dtype_size(*dtype),
                               "the byte size");
      } catch (const Error& e) {
        throw e.with_tensor(name);
      }
      if (expected != end - begin) {
        throw Error("byte size does not match shape x dtype",
                    {.tensor = name, .value = std::to_string(end - begin) + " bytes, expected " + std::to_string(expected)});
      }
      extents.push_back({begin, end, name});
      tensors_.push_back({name, *dtype, std::move(shape), buffer.subspan(begin, end - begin)});
    }
    std::sort(extents.begin(), extents.end(),
              [](const Extent& a, const Extent& b) { return a.begin < b.begin; });
    for (size_t i = 1; i < extents.size(); ++i) {
      if (extents[i].begin < extents[i - 1].end) {
        throw Error("data overlaps tensor '" + extents[i - 1].name + "'",
                    {.tensor = extents[i].name});
      }
    }
  } catch (const Error& e) {
    throw e.with_file(path);
  }
}

const TensorView* SafetensorsFile::find(std::string_view name) const {
  for (const auto& t : tensors_) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

const TensorView& SafetensorsFile::tensor(std::string_view name) const {
  const TensorView* t = find(name);
  if (t == nullptr) throw Error("no such tensor", {.file = path(), .tensor = std::string(name)});
  return *t;
}

std::vector<float> SafetensorsFile::to_f32(const TensorView& t) const {
  if (!dtype_is_float(t.dtype)) {
    throw Error("tensor is not a float tensor",
                {.file = path(), .tensor = t.name, .value = std::string(dtype_name(t.dtype))});
  }
  std::vector<float> out(static_cast<size_t>(t.numel()));
  convert_to_f32(t.dtype, t.data.data(), out.size(), out.data());
  return out;
}

}  // namespace lowbit
