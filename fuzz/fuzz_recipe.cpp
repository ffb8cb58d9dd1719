// libFuzzer harness: a recipe JSON file, then format choices for a 32-layer model.
#include "fuzz_input.h"
#include "lowbit/recipe.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return lowbit::fuzz::run(data, size, [](const std::string& path) {
    const lowbit::Recipe r = lowbit::load_recipe(path);
    for (const char* name : {"token_embd.weight", "output.weight", "blk.0.attn_v.weight", "blk.31.ffn_down.weight"}) {
      for (int64_t layer : {-1, 0, 7, 31}) lowbit::choose_format(r, name, layer, 32, 4096);
    }
  });
}
