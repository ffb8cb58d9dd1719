// libFuzzer harness: a SentencePiece tokenizer.model, then a round of encoding and decoding.
#include "fuzz_input.h"
#include "lowbit/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return lowbit::fuzz::run(data, size, [](const std::string& path) {
    const auto tok = lowbit::load_sentencepiece_tokenizer(path);
    const auto ids = tok->encode("Once upon a time, \xC3\xA9t\xC3\xA9 123\n!", true);
    tok->decode(ids);
  });
}
