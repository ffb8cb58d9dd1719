// safetensors writer: header with offsets in the order given, padded with spaces to a
// multiple of 8 bytes, written through AtomicFile.
#include <nlohmann/json.hpp>
#include <set>

#include "lowbit/atomic_file.h"
#include "lowbit/error.h"
#include "lowbit/safetensors.h"

namespace lowbit {

struct SafetensorsStreamWriter::Impl {
  std::string path;
  AtomicFile out;
  std::vector<SafetensorsTensorInfo> tensors;
  std::vector<uint64_t> sizes;
  size_t next = 0;
  explicit Impl(const std::string& p) : path(p), out(p) {}
  Impl(const std::string& p, const PartialOutput& r) : path(p), out(p, r.temp_path, r.bytes) {}
};

SafetensorsStreamWriter::SafetensorsStreamWriter(const std::string& path, const std::vector<SafetensorsTensorInfo>& tensors,
                                                 const std::map<std::string, std::string>& metadata, const PartialOutput* resume) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::set<std::string> names;
  std::vector<uint64_t> sizes;
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    if (t.name == "__metadata__" || !names.insert(t.name).second) {
      throw Error("duplicate or reserved tensor name", {.file = path, .tensor = t.name});
    }
    uint64_t size = dtype_size(t.dtype);
    for (int64_t d : t.shape) {
      if (d < 0) throw Error("negative dimension", {.file = path, .tensor = t.name});
      size *= static_cast<uint64_t>(d);
    }
    header[t.name] = {{"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {offset, offset + size}}};
    offset += size;
    sizes.push_back(size);
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(text.size() >> (8 * i));
  if (resume != nullptr) {
    uint64_t end = 8 + text.size();
    for (size_t i = 0; i < resume->tensors && i < sizes.size(); ++i) end += sizes[i];
    if (resume->tensors > tensors.size() || resume->bytes != end) {
      throw Error("the partial output does not end where its tensors do", {.file = resume->temp_path, .value = std::to_string(resume->bytes)});
    }
  }
  impl_ = resume ? std::make_unique<Impl>(path, *resume) : std::make_unique<Impl>(path);
  impl_->tensors = tensors;
  impl_->sizes = std::move(sizes);
  if (resume != nullptr) {
    impl_->next = resume->tensors;
    return;
  }
  impl_->out.write(len, 8);
  impl_->out.write(text.data(), text.size());
}

uint64_t SafetensorsStreamWriter::position() const { return impl_->out.bytes_written(); }
uint64_t SafetensorsStreamWriter::take_region_digest() { return impl_->out.take_region_digest(); }
const std::string& SafetensorsStreamWriter::temp_path() const { return impl_->out.temp_path(); }

SafetensorsStreamWriter::~SafetensorsStreamWriter() = default;

void SafetensorsStreamWriter::write_next(std::span<const uint8_t> data) {
  Impl& w = *impl_;
  if (w.next >= w.tensors.size()) throw Error("more tensors written than declared", {.file = w.path});
  if (data.size() != w.sizes[w.next]) {
    throw Error("data size does not match shape x dtype", {.file = w.path, .tensor = w.tensors[w.next].name,
                .value = std::to_string(data.size()) + " != " + std::to_string(w.sizes[w.next])});
  }
  w.out.write(data);
  ++w.next;
}

void SafetensorsStreamWriter::commit() {
  Impl& w = *impl_;
  if (w.next != w.tensors.size()) {
    throw Error("only " + std::to_string(w.next) + " of " + std::to_string(w.tensors.size()) + " tensors written", {.file = w.path});
  }
  w.out.commit();
}

void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  std::vector<SafetensorsTensorInfo> infos;
  for (const auto& t : tensors) infos.push_back({t.name, t.dtype, t.shape});
  SafetensorsStreamWriter w(path, infos, metadata);
  for (const auto& t : tensors) w.write_next(t.data);
  w.commit();
}

}  // namespace lowbit
