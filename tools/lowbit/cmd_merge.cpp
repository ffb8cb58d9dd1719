// `lowbit merge BASE ADAPTER -o OUT [--dtype bf16|f16|f32] [--recipe R]`: the base's
// decoder linears (dequantized; rounded first to the adapter's recorded base format when
// they are float) plus (alpha / r) · B · A, written as a plain Hugging Face folder in
// --dtype, or with --recipe re-quantized (to GGUF when OUT ends in .gguf).
#include <fmt/format.h>

#include "commands.h"
#include "lowbit/error.h"
#include "lowbit/lora.h"
#include "lowbit/output_guard.h"
#include "lowbit/progress.h"
#include "lowbit/quantize.h"

namespace lowbit::cli {

Runner register_merge(CLI::App& app) {
  auto* sub = app.add_subcommand("merge", "merge a LoRA adapter (PEFT folder) into its base: a 16-bit Hugging Face folder, or a recipe");
  struct Options {
    std::string base, adapter, out, dtype = "bf16", recipe, tokenizer;
    bool json = false;
  };
  auto o = std::make_shared<Options>();
  sub->add_option("base", o->base, "the base model (HF folder, .gguf, llama2.c; quantized or not)")->required();
  sub->add_option("adapter", o->adapter, "PEFT adapter folder (adapter_config.json, adapter_model.safetensors)")->required();
  sub->add_option("-o,--output", o->out, "output folder (or .gguf with --recipe)")->required();
  auto* dtype = sub->add_option("--dtype", o->dtype, "f16, bf16 (default) or f32 for every matrix");
  sub->add_option("--recipe,-r", o->recipe, "re-quantize the merged model with this recipe instead")->excludes(dtype);
  sub->add_option("--tokenizer", o->tokenizer, "tokenizer .bin for llama2.c checkpoints");
  sub->add_flag("--json", o->json, "print the summary as JSON on stdout");
  return [o]() {
    if (o->dtype != "f16" && o->dtype != "bf16" && o->dtype != "f32") throw Error("--dtype is f16, bf16 or f32", {.value = o->dtype});
    const LoraAdapter adapter = load_peft_adapter(o->adapter);  // errors before any work
    refuse_overwriting_inputs(o->out, {o->adapter + "/adapter_model.safetensors", o->adapter + "/adapter_config.json"});
    QuantizeOptions q;
    q.input = o->base;
    q.output = o->out;
    q.tokenizer = o->tokenizer;
    q.recipe = o->recipe.empty() ? "pure:" + o->dtype : o->recipe;
    q.transform = [&](Model& m) {
      if (!adapter.base_format.empty() && m.layers.front().attn_q.format->kind == FormatKind::kFloat) {
        round_decoder_linears(m, format_by_name(adapter.base_format));
      }
      merge_lora(m, adapter);
    };
    std::unique_ptr<Progress> progress;
    q.progress = [&](int64_t i, int64_t n, uint64_t, const std::string& name) {
      if (!progress) progress = std::make_unique<Progress>("merge", n, "tensors");
      progress->update(i, name);
    };
    const QuantizeReport r = quantize_model(q);
    if (progress) progress->finish("");
    if (o->json) {
      fmt::print("{{\"output\": \"{}\", \"recipe\": \"{}\", \"modules\": {}, \"bits_per_weight\": {}, \"file_bytes\": {}}}\n", o->out, r.recipe,
                 adapter.pairs.size(), r.bits_per_weight(), r.file_bytes);
      return 0;
    }
    fmt::print(stderr, "{} + {} ({} adapted linears, r {}, alpha {}) -> {} ({}, {:.3f} bpw)\n", o->base, o->adapter, adapter.pairs.size(), adapter.rank,
               adapter.alpha, o->out, r.recipe, r.bits_per_weight());
    return 0;
  };
}

}  // namespace lowbit::cli
