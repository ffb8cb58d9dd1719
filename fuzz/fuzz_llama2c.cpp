// libFuzzer harness: a llama2.c checkpoint (header, exact size), with the shared
// stories260K tokenizer.
#include "fuzz_input.h"
#include "lowbit/model_io.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string tokenizer = lowbit::fuzz::shared_dir() + "/models/stories260K/tok512.bin";
  return lowbit::fuzz::run(data, size, [](const std::string& path) { lowbit::load_llama2c(path, tokenizer); });
}
