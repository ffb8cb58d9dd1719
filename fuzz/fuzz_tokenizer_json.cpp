// libFuzzer harness: tokenizer.json (BPE vocabulary, merges, normalizers, pre-tokenizers,
// decoders, post-processor), then a round of encoding and decoding.
#include "fuzz_input.h"
#include "lowbit/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return lowbit::fuzz::run(data, size, [](const std::string& path) {
    const auto tok = lowbit::load_hf_tokenizer(path);
    const auto ids = tok->encode("Once upon a time, \xC3\xA9t\xC3\xA9 <s> 123\n\t!", true);
    tok->decode(ids);
  });
}
