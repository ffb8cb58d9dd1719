// GGUF reader: typed, bounded reads; every count, length, dimension and offset is checked
// against the bytes that exist before it is used (as llama.cpp's gguf.cpp does).
#include <algorithm>
#include <cstring>
#include <set>

#include "lowbit/checked_size.h"
#include "lowbit/error.h"
#include "lowbit/format.h"
#include "lowbit/gguf.h"

namespace lowbit {
namespace {

constexpr uint64_t kMaxCount = uint64_t{1} << 24;    // keys, tensors, array elements
constexpr uint64_t kMaxString = uint64_t{1} << 30;

class Cursor {
 public:
  Cursor(std::span<const uint8_t> b, std::string path) : b_(b), path_(std::move(path)) {}

  void need(uint64_t n, const std::string& what) const {
    if (n > b_.size() - pos_) {
      throw Error("truncated GGUF: " + what + " needs " + std::to_string(n) + " bytes at offset " + std::to_string(pos_),
                  {.file = path_, .value = std::to_string(b_.size()) + " bytes in file"});
    }
  }
  template <typename T>
  T read(const std::string& what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, b_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string read_string(const std::string& what) {
    const auto n = read<uint64_t>(what + " length");
    if (n > kMaxString) throw Error(what + ": string length out of range", {.file = path_, .value = std::to_string(n)});
    need(n, what);
    std::string s(reinterpret_cast<const char*>(b_.data() + pos_), n);
    pos_ += n;
    return s;
  }
  uint64_t pos() const { return pos_; }
  const std::string& path() const { return path_; }

 private:
  std::span<const uint8_t> b_;
  std::string path_;
  uint64_t pos_ = 0;
};

GgufValue read_value(Cursor& c, GgufType type, const std::string& key, bool in_array) {
  GgufValue v;
  v.type = type;
  const std::string what = "value of '" + key + "'";
  switch (type) {
    case GgufType::kU8: v.u = c.read<uint8_t>(what); break;
    case GgufType::kI8: v.i = c.read<int8_t>(what); break;
    case GgufType::kU16: v.u = c.read<uint16_t>(what); break;
    case GgufType::kI16: v.i = c.read<int16_t>(what); break;
    case GgufType::kU32: v.u = c.read<uint32_t>(what); break;
    case GgufType::kI32: v.i = c.read<int32_t>(what); break;
    case GgufType::kU64: v.u = c.read<uint64_t>(what); break;
    case GgufType::kI64: v.i = c.read<int64_t>(what); break;
    case GgufType::kF32: v.f = c.read<float>(what); break;
    case GgufType::kF64: v.f = c.read<double>(what); break;
    case GgufType::kBool: {
      const auto b = c.read<uint8_t>(what);
      if (b > 1) throw Error("bool value is not 0 or 1 at '" + key + "'", {.file = c.path(), .value = std::to_string(b)});
      v.u = b;
      break;
    }
    case GgufType::kString: v.s = c.read_string(what); break;
    case GgufType::kArray: {
      if (in_array) throw Error("nested GGUF arrays are not supported at '" + key + "'", {.file = c.path()});
      const auto elem = c.read<uint32_t>("array type of '" + key + "'");
      if (elem > static_cast<uint32_t>(GgufType::kF64)) {
        throw Error("unknown array element type at '" + key + "'", {.file = c.path(), .value = std::to_string(elem)});
      }
      v.elem_type = static_cast<GgufType>(elem);
      const auto n = c.read<uint64_t>("array length of '" + key + "'");
      if (n > kMaxCount) throw Error("array too long at '" + key + "'", {.file = c.path(), .value = std::to_string(n)});
      // Each element takes at least a byte (a string at least its 8-byte length): check
      // the file could hold them before reserving memory for them.
      c.need(v.elem_type == GgufType::kString ? n * 8 : n, "array of '" + key + "'");
      v.array.reserve(n);
      for (uint64_t k = 0; k < n; ++k) v.array.push_back(read_value(c, v.elem_type, key, true));
      break;
    }
    default:
      throw Error("unknown value type at '" + key + "'", {.file = c.path(), .value = std::to_string(static_cast<uint32_t>(type))});
  }
  return v;
}

}  // namespace

GgufFile::GgufFile(const std::string& path) : map_(std::make_shared<MappedFile>(path)) {
  const auto bytes = map_->bytes();
  Cursor c(bytes, path);
  c.need(4, "magic");
  if (std::memcmp(bytes.data(), "GGUF", 4) != 0) throw Error("not a GGUF file (bad magic)", {.file = path});
  c.read<uint32_t>("magic");
  version_ = c.read<uint32_t>("version");
  if (version_ != 2 && version_ != 3) {
    const bool swapped = version_ == 0x02000000 || version_ == 0x03000000;
    throw Error(swapped ? "big-endian GGUF is not supported" : "unsupported GGUF version (2 and 3 are read)",
                {.file = path, .value = std::to_string(version_)});
  }
  const auto n_tensors = c.read<uint64_t>("tensor count");
  const auto n_kv = c.read<uint64_t>("key/value count");
  if (n_tensors > kMaxCount || n_kv > kMaxCount) {
    throw Error("tensor or key count out of range", {.file = path, .value = std::to_string(n_tensors) + " tensors, " + std::to_string(n_kv) + " keys"});
  }
  std::set<std::string> keys;
  for (uint64_t k = 0; k < n_kv; ++k) {
    std::string key = c.read_string("key " + std::to_string(k));
    if (!keys.insert(key).second) throw Error("duplicate key", {.file = path, .value = key});
    const auto type = c.read<uint32_t>("type of '" + key + "'");
    if (type > static_cast<uint32_t>(GgufType::kF64)) {
      throw Error("unknown value type of '" + key + "'", {.file = path, .value = std::to_string(type)});
    }
    GgufValue v = read_value(c, static_cast<GgufType>(type), key, false);
    kv_.push_back({std::move(key), std::move(v)});
  }
  if (const GgufValue* a = find("general.alignment")) {
    if (a->type != GgufType::kU32 || a->u == 0 || (a->u & (a->u - 1)) != 0) {
      throw Error("general.alignment is not a power-of-two u32", {.file = path, .value = a->describe()});
    }
    alignment_ = a->u;
  }
  std::set<std::string> names;
  for (uint64_t t = 0; t < n_tensors; ++t) {
    GgufTensor info;
    info.name = c.read_string("name of tensor " + std::to_string(t));
    if (!names.insert(info.name).second) throw Error("duplicate tensor name", {.file = path, .tensor = info.name});
    const auto n_dims = c.read<uint32_t>("dimension count");
    if (n_dims == 0 || n_dims > 4) throw Error("dimension count out of range", {.file = path, .tensor = info.name, .value = std::to_string(n_dims)});
    for (uint32_t d = 0; d < n_dims; ++d) {
      const auto dim = c.read<int64_t>("dimension");
      if (dim <= 0 || dim > (int64_t{1} << 40)) throw Error("dimension out of range", {.file = path, .tensor = info.name, .value = std::to_string(dim)});
      info.dims.push_back(dim);
    }
    info.type = static_cast<int32_t>(c.read<uint32_t>("type"));
    info.offset = c.read<uint64_t>("offset");
    tensors_.push_back(std::move(info));
  }
  const uint64_t data_start = (c.pos() + alignment_ - 1) / alignment_ * alignment_;
  if (data_start > bytes.size() && !tensors_.empty()) {
    throw Error("truncated GGUF: no data section", {.file = path, .value = std::to_string(bytes.size()) + " bytes"});
  }
  const auto data = bytes.subspan(std::min<uint64_t>(data_start, bytes.size()));
  struct Extent { uint64_t begin, end; const std::string* name; };
  std::vector<Extent> extents;
  for (auto& t : tensors_) {
    const Format* f = find_format_by_gguf_type(t.type);
    if (f == nullptr) throw Error("unsupported ggml tensor type", {.file = path, .tensor = t.name, .value = std::to_string(t.type)});
    if (!format_fits(*f, t.dims[0])) {
      throw Error("row length is not a multiple of the block size of " + std::string(f->name), {.file = path, .tensor = t.name, .value = std::to_string(t.dims[0])});
    }
    uint64_t size = 0;
    try {
      const int64_t rows = checked_numel(std::span(t.dims).subspan(1), "the row count");
      size = f->tensor_bytes(rows, t.dims[0]);
    } catch (const Error& e) {
      throw e.with_file(path).with_tensor(t.name);
    }
    if (t.offset % alignment_ != 0) throw Error("tensor offset not aligned", {.file = path, .tensor = t.name, .value = std::to_string(t.offset)});
    if (t.offset > data.size() || size > data.size() - t.offset) {
      throw Error("truncated GGUF: tensor data out of range",
                  {.file = path, .tensor = t.name, .value = describe_range(t.offset, size) + " in " + std::to_string(data.size()) + " bytes"});
    }
    t.data = data.subspan(t.offset, size);
    extents.push_back({t.offset, t.offset + size, &t.name});
  }
  std::sort(extents.begin(), extents.end(), [](const Extent& a, const Extent& b) { return a.begin < b.begin; });
  for (size_t k = 1; k < extents.size(); ++k) {
    if (extents[k].begin < extents[k - 1].end) {
      throw Error("tensor data overlaps '" + *extents[k - 1].name + "'", {.file = path, .tensor = *extents[k].name});
    }
  }
}

const GgufValue* GgufFile::find(std::string_view key) const {
  for (const auto& kv : kv_) {
    if (kv.key == key) return &kv.value;
  }
  return nullptr;
}

const GgufValue& GgufFile::get(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) throw Error("missing key '" + std::string(key) + "'", {.file = path()});
  return *v;
}

const GgufTensor* GgufFile::find_tensor(std::string_view name) const {
  for (const auto& t : tensors_) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

}  // namespace lowbit
