// safetensors writer: header with offsets in the order given, padded with spaces to a
// multiple of 8 bytes, written through AtomicFile.
#include <nlohmann/json.hpp>
#include <set>

#include "lowbit/atomic_file.h"
#include "lowbit/error.h"
#include "lowbit/safetensors.h"

namespace lowbit {

void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::set<std::string> names;
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    if (t.name == "__metadata__" || !names.insert(t.name).second) {
      throw Error("duplicate or reserved tensor name", {.file = path, .tensor = t.name});
    }
    uint64_t expected = dtype_size(t.dtype);
    for (int64_t d : t.shape) {
      if (d < 0) throw Error("negative dimension", {.file = path, .tensor = t.name});
      expected *= static_cast<uint64_t>(d);
    }
    if (expected != t.data.size()) {
      throw Error("data size does not match shape x dtype",
                  {.file = path, .tensor = t.name,
                   .value = std::to_string(t.data.size()) + " != " + std::to_string(expected)});
    }
    header[t.name] = {{"dtype", dtype_name(t.dtype)},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + expected}}};
    offset += expected;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(text.size() >> (8 * i));

  AtomicFile out(path);
  out.write(len, 8);
  out.write(text.data(), text.size());
  for (const auto& t : tensors) out.write(t.data);
  out.commit();
}

}  // namespace lowbit
