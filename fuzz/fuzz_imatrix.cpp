// libFuzzer harness: importance matrices, llama.cpp's GGUF format and its legacy .dat
// (ImportanceMatrix::load tells them apart by the magic), then a weight lookup.
#include "fuzz_input.h"
#include "lowbit/imatrix.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return lowbit::fuzz::run(data, size, [](const std::string& path) {
    const auto m = lowbit::ImportanceMatrix::load(path);
    for (const auto& [name, e] : m.entries) m.weights_for(name, static_cast<int64_t>(e.sum2.size()));
  });
}
