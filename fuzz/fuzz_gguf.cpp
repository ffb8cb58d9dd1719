// libFuzzer harness: the GGUF container reader (header, key/values, tensor infos, extents).
#include "fuzz_input.h"
#include "lowbit/format.h"
#include "lowbit/gguf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return lowbit::fuzz::run(data, size, [](const std::string& path) {
    const lowbit::GgufFile f(path);
    // Touch every value and the first and last byte of every tensor (ASan checks the reads).
    volatile size_t sink = 0;
    for (const auto& kv : f.metadata()) sink = sink + kv.value.describe().size();
    for (const auto& t : f.tensors()) sink = sink + (t.data.empty() ? 0 : t.data.front() + t.data.back());
  });
}
