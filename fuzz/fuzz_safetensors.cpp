// libFuzzer harness: the safetensors header (length, JSON, dtypes, shapes, offsets).
#include "fuzz_input.h"
#include "lowbit/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return lowbit::fuzz::run(data, size, [](const std::string& path) {
    const lowbit::SafetensorsFile f(path);
    for (const auto& t : f.tensors()) {
      if (lowbit::dtype_is_float(t.dtype) && t.numel() <= 4096) f.to_f32(t);
    }
  });
}
