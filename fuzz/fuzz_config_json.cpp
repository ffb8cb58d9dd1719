// libFuzzer harness: a Hugging Face config.json read into a ModelConfig.
#include "fuzz_input.h"
#include "lowbit/model_io.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return lowbit::fuzz::run(data, size, [](const std::string& path) { lowbit::read_hf_config(path); });
}
