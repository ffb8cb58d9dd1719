// GGUF v3 writer: header, key/values, tensor infos, padding to the alignment, then each
// tensor's data at an aligned offset; written through AtomicFile.
#include <set>

#include "lowbit/atomic_file.h"
#include "lowbit/error.h"
#include "lowbit/format.h"
#include "lowbit/gguf.h"

namespace lowbit {
namespace {

class Buffer {
 public:
  template <typename T>
  void put(T v) {
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    bytes_.insert(bytes_.end(), p, p + sizeof(T));
  }
  void put_string(const std::string& s) {
    put<uint64_t>(s.size());
    bytes_.insert(bytes_.end(), s.begin(), s.end());
  }
  void put_value(const GgufValue& v, GgufType type) {
    switch (type) {
      case GgufType::kU8: put<uint8_t>(static_cast<uint8_t>(v.u)); break;
      case GgufType::kI8: put<int8_t>(static_cast<int8_t>(v.i)); break;
      case GgufType::kU16: put<uint16_t>(static_cast<uint16_t>(v.u)); break;
      case GgufType::kI16: put<int16_t>(static_cast<int16_t>(v.i)); break;
      case GgufType::kU32: put<uint32_t>(static_cast<uint32_t>(v.u)); break;
      case GgufType::kI32: put<int32_t>(static_cast<int32_t>(v.i)); break;
      case GgufType::kU64: put<uint64_t>(v.u); break;
      case GgufType::kI64: put<int64_t>(v.i); break;
      case GgufType::kF32: put<float>(static_cast<float>(v.f)); break;
      case GgufType::kF64: put<double>(v.f); break;
      case GgufType::kBool: put<uint8_t>(v.u ? 1 : 0); break;
      case GgufType::kString: put_string(v.s); break;
      case GgufType::kArray:
        put<uint32_t>(static_cast<uint32_t>(v.elem_type));
        put<uint64_t>(v.array.size());
        for (const auto& e : v.array) put_value(e, v.elem_type);
        break;
    }
  }
  const std::vector<uint8_t>& bytes() const { return bytes_; }

 private:
  std::vector<uint8_t> bytes_;
};

}  // namespace

struct GgufStreamWriter::Impl {
  std::string path;
  AtomicFile out;
  uint64_t alignment;
  std::vector<GgufTensorInfo> tensors;
  std::vector<uint64_t> offsets, sizes;
  uint64_t end = 0, written = 0;  // data bytes (after the header)
  uint64_t header = 0;  // the header's bytes, padded
  size_t next = 0;
  Impl(const std::string& p, uint64_t a) : path(p), out(p), alignment(a) {}
  Impl(const std::string& p, uint64_t a, const PartialOutput& r) : path(p), out(p, r.temp_path, r.bytes), alignment(a) {}
};

namespace {

// The header bytes (unpadded) and each tensor's offset and size; end: the data's length.
struct GgufLayout {
  Buffer header;
  std::vector<uint64_t> offsets, sizes;
  uint64_t end = 0;
};

GgufLayout gguf_layout(const std::string& path, const std::vector<GgufKeyValue>& kv, const std::vector<GgufTensorInfo>& tensors,
                       uint64_t alignment) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0) {
    throw Error("alignment must be a power of two", {.file = path, .value = std::to_string(alignment)});
  }
  std::vector<GgufKeyValue> all = kv;
  if (alignment != 32) all.push_back({"general.alignment", GgufValue::u32(static_cast<uint32_t>(alignment))});
  std::set<std::string> keys, names;
  GgufLayout g;
  Buffer& header = g.header;
  header.put<uint32_t>(0x46554747);  // "GGUF"
  header.put<uint32_t>(3);
  header.put<uint64_t>(tensors.size());
  header.put<uint64_t>(all.size());
  for (const auto& [key, value] : all) {
    if (!keys.insert(key).second) throw Error("duplicate GGUF key", {.file = path, .value = key});
    header.put_string(key);
    header.put<uint32_t>(static_cast<uint32_t>(value.type));
    header.put_value(value, value.type);
  }
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    if (!names.insert(t.name).second) throw Error("duplicate tensor name", {.file = path, .tensor = t.name});
    const Format* f = find_format_by_gguf_type(t.type);
    if (f == nullptr || t.dims.empty()) throw Error("tensor has no GGUF type", {.file = path, .tensor = t.name, .value = std::to_string(t.type)});
    if (!format_fits(*f, t.dims[0])) {
      throw Error("row length does not fit " + std::string(f->name), {.file = path, .tensor = t.name, .value = std::to_string(t.dims[0])});
    }
    int64_t rows = 1;
    for (size_t d = 1; d < t.dims.size(); ++d) rows *= t.dims[d];
    header.put_string(t.name);
    header.put<uint32_t>(static_cast<uint32_t>(t.dims.size()));
    for (int64_t d : t.dims) header.put<int64_t>(d);
    header.put<uint32_t>(static_cast<uint32_t>(t.type));
    header.put<uint64_t>(offset);
    g.offsets.push_back(offset);
    g.sizes.push_back(f->tensor_bytes(rows, t.dims[0]));
    offset = (offset + g.sizes.back() + alignment - 1) / alignment * alignment;
  }
  g.end = offset;
  return g;
}

}  // namespace

uint64_t gguf_header_bytes(const std::vector<GgufKeyValue>& kv, const std::vector<GgufTensorInfo>& tensors, uint64_t alignment) {
  const GgufLayout g = gguf_layout("", kv, tensors, alignment);
  return (g.header.bytes().size() + alignment - 1) / alignment * alignment;
}

GgufStreamWriter::GgufStreamWriter(const std::string& path, const std::vector<GgufKeyValue>& kv,
                                   const std::vector<GgufTensorInfo>& tensors, uint64_t alignment, const PartialOutput* resume) {
  GgufLayout g = gguf_layout(path, kv, tensors, alignment);
  const uint64_t header = g.header.bytes().size() + (alignment - g.header.bytes().size() % alignment) % alignment;
  if (resume != nullptr && (resume->tensors > tensors.size() || resume->bytes < header ||
                            resume->bytes - header != (resume->tensors == 0 ? 0 : g.offsets[resume->tensors - 1] + g.sizes[resume->tensors - 1]))) {
    throw Error("the partial output does not end where its tensors do", {.file = resume->temp_path, .value = std::to_string(resume->bytes)});
  }
  impl_ = resume ? std::make_unique<Impl>(path, alignment, *resume) : std::make_unique<Impl>(path, alignment);
  impl_->tensors = tensors;
  impl_->offsets = std::move(g.offsets);
  impl_->sizes = std::move(g.sizes);
  impl_->end = g.end;
  impl_->header = header;
  if (resume != nullptr) {
    impl_->next = resume->tensors;
    impl_->written = resume->bytes - header;
    return;
  }
  impl_->out.write(g.header.bytes());
  impl_->out.write_zeros(header - g.header.bytes().size());
}

uint64_t GgufStreamWriter::position() const { return impl_->out.bytes_written(); }
uint64_t GgufStreamWriter::take_region_digest() { return impl_->out.take_region_digest(); }
const std::string& GgufStreamWriter::temp_path() const { return impl_->out.temp_path(); }

GgufStreamWriter::~GgufStreamWriter() = default;

void GgufStreamWriter::write_next(std::span<const uint8_t> data) {
  Impl& w = *impl_;
  if (w.next >= w.tensors.size()) throw Error("more tensors written than declared", {.file = w.path});
  if (data.size() != w.sizes[w.next]) {
    throw Error("tensor data size does not match its dims and type", {.file = w.path, .tensor = w.tensors[w.next].name,
                .value = std::to_string(data.size()) + " != " + std::to_string(w.sizes[w.next])});
  }
  w.out.write_zeros(w.offsets[w.next] - w.written);
  w.out.write(data);
  w.written = w.offsets[w.next] + data.size();
  ++w.next;
}

void GgufStreamWriter::commit() {
  Impl& w = *impl_;
  if (w.next != w.tensors.size()) {
    throw Error("only " + std::to_string(w.next) + " of " + std::to_string(w.tensors.size()) + " tensors written", {.file = w.path});
  }
  w.out.write_zeros(w.end - w.written);
  w.out.commit();
}

void write_gguf(const std::string& path, const std::vector<GgufKeyValue>& kv,
                const std::vector<GgufTensorToWrite>& tensors, uint64_t alignment) {
  std::vector<GgufTensorInfo> infos;
  for (const auto& t : tensors) infos.push_back({t.name, t.dims, t.type});
  GgufStreamWriter w(path, kv, infos, alignment);
  for (const auto& t : tensors) w.write_next(t.data);
  w.commit();
}

}  // namespace lowbit
