// libFuzzer harness, model level: a whole GGUF model loaded, its weights checked for
// NaN/Inf, and one token run through the engine.
#include "fuzz_input.h"
#include "lowbit/engine.h"
#include "lowbit/model_io.h"
#include "lowbit/weight_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return lowbit::fuzz::run(data, size, [](const std::string& path) {
    const lowbit::Model m = lowbit::load_gguf_model(path);
    lowbit::require_finite_weights(m);
    if (m.parameter_count() > (int64_t{1} << 24)) return;  // keep an execution short
    lowbit::Engine engine(m, 4);
    std::vector<float> logits(static_cast<size_t>(m.config.vocab_size));
    const int32_t token = m.tokenizer->bos() >= 0 ? m.tokenizer->bos() : 0;
    engine.forward(std::span(&token, 1), 0, logits.data());
    m.tokenizer->decode({token});
  });
}
