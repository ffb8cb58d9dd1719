// `lowbit generate MODEL -p PROMPT -n N`: streams generated text to stdout; speed on stderr.
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "lowbit/lora.h"
#include "lowbit/engine.h"
#include "lowbit/error.h"
#include "lowbit/model_io.h"
#include "lowbit/sampler.h"

namespace lowbit::cli {

Runner register_generate(CLI::App& app) {
  auto* sub = app.add_subcommand("generate", "generate text from a prompt");
  struct Options {
    std::string model, prompt, tokenizer, kv_cache = "f32", act, lora;
    int64_t n = 64;
    SamplerOptions sampler;
    bool json = false, kv_rotate = false;
  };
  auto o = std::make_shared<Options>();
  sub->add_option("model", o->model, "HF folder, .gguf file or llama2.c checkpoint")->required();
  sub->add_option("-p,--prompt", o->prompt, "prompt text");
  sub->add_option("-n,--n-predict", o->n, "tokens to generate")->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  sub->add_option("--temp", o->sampler.temperature, "temperature (0: greedy)");
  sub->add_option("--top-k", o->sampler.top_k, "keep the k most likely tokens (0: all)");
  sub->add_option("--top-p", o->sampler.top_p, "keep the smallest set with this probability mass");
  sub->add_option("--seed", o->sampler.seed, "random seed");
  sub->add_option("--tokenizer", o->tokenizer, "tokenizer .bin for llama2.c checkpoints");
  sub->add_option("--kv-cache", o->kv_cache, "KV cache type: f32, f16, bf16, q8_0, q4_0, int8, fp8_e4m3, fp8_e5m2 (keys after RoPE)");
  sub->add_flag("--kv-rotate", o->kv_rotate, "Hadamard-rotate each K/V row before rounding it");
  sub->add_option("--lora", o->lora, "a PEFT LoRA adapter folder, merged into the model in memory");
  sub->add_option("--act", o->act, "activations of the block linears (default: as the model records them): none, int8 (per token; int8 GEMM with int8 per-channel weights), llm_int8 (int8 with outlier columns in float), fp8_e4m3, fp8_e5m2; int8_static, fp8_e4m3_static (the model's input_scale per linear)");
  sub->add_flag("--json", o->json, "print one JSON object instead of streaming text");
  return [o]() {
    Model m = open_model(o->model, o->tokenizer);
    if (!o->lora.empty()) apply_lora_adapter(m, o->lora);
    std::vector<int32_t> tokens = m.tokenizer->encode(o->prompt, true);
    if (tokens.empty()) tokens.push_back(m.tokenizer->bos() >= 0 ? m.tokenizer->bos() : 0);
    const int64_t ctx = std::min<int64_t>(m.config.context_length, static_cast<int64_t>(tokens.size()) + o->n);
    if (static_cast<int64_t>(tokens.size()) >= ctx) throw lowbit::Error("prompt fills the model's context", {.value = std::to_string(tokens.size()) + " tokens"});
    Engine engine(m, ctx, kv_cache_options(o->kv_cache, o->kv_rotate));
    engine.set_activation_quant(act_quant_for(m, o->act));
    Sampler sampler(o->sampler);
    std::vector<float> logits(m.config.vocab_size);
    std::string text;
    for (size_t i = 1; i < tokens.size(); ++i) text += m.tokenizer->decode_token(tokens[i - 1], tokens[i]);
    if (!o->json) std::fputs(text.c_str(), stdout);
    const auto t0 = std::chrono::steady_clock::now();
    engine.forward(tokens, 0, logits.data(), false);
    const auto t1 = std::chrono::steady_clock::now();
    int64_t generated = 0;
    while (static_cast<int64_t>(tokens.size()) < ctx && generated < o->n) {
      const int32_t next = sampler.sample(logits.data(), m.config.vocab_size);
      if (next == m.tokenizer->eos()) break;
      const std::string piece = m.tokenizer->decode_token(tokens.back(), next);
      text += piece;
      if (!o->json) {
        std::fputs(piece.c_str(), stdout);
        std::fflush(stdout);
      }
      tokens.push_back(next);
      ++generated;
      if (static_cast<int64_t>(tokens.size()) < ctx) engine.forward(std::span(&tokens.back(), 1), static_cast<int64_t>(tokens.size()) - 1, logits.data(), false);
    }
    const auto t2 = std::chrono::steady_clock::now();
    const double prefill_s = std::chrono::duration<double>(t1 - t0).count();
    const double gen_s = std::chrono::duration<double>(t2 - t1).count();
    const double tps = gen_s > 0 ? generated / gen_s : 0;
    if (o->json) {
      nlohmann::ordered_json j{{"text", text}, {"prompt_tokens", tokens.size() - generated}, {"generated_tokens", generated},
                               {"prefill_seconds", prefill_s}, {"generation_tokens_per_second", tps}};
      fmt::print("{}\n", j.dump(2));
    } else {
      fmt::print("\n");
      fmt::print(stderr, "\n{} prompt tokens in {:.3f} s, {} generated at {:.1f} tokens/s\n", tokens.size() - generated,
                 prefill_s, generated, tps);
    }
    return 0;
  };
}

}  // namespace lowbit::cli
