// `lowbit bench [MODEL] -p 128 -n 32 --reps R [--memory] [--json] [-o FILE]`: prefill and
// decode tokens/s (median and range), the weight bytes a decode step reads, the GB/s that
// makes and its fraction of the machine's read bandwidth, measured in the same run; the
// int8 path's peak. `lowbit bench --memory` measures the bandwidth alone.
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "lowbit/atomic_file.h"
#include "lowbit/cpu_features.h"
#include "lowbit/error.h"
#include "lowbit/kernels.h"
#include "lowbit/speed.h"
#include "lowbit/threads.h"

namespace lowbit::cli {

Runner register_bench(CLI::App& app) {
  auto* sub = app.add_subcommand("bench", "measure prefill/decode speed against the machine's bandwidth and int8 peak");
  struct Options {
    std::string model, tokenizer, out, kv_cache = "f32", act;
    int64_t prompt = 128, generate = 32;
    int reps = 3;
    bool memory_only = false, json = false, kv_rotate = false;
  };
  auto o = std::make_shared<Options>();
  sub->add_option("model", o->model, "HF folder, .gguf file or llama2.c checkpoint (omit with --memory)");
  sub->add_option("-p,--prompt-tokens", o->prompt, "prompt length for the prefill rate")->check(CLI::Range(int64_t{0}, int64_t{1} << 16));
  sub->add_option("-n,--gen-tokens", o->generate, "tokens for the decode rate")->check(CLI::Range(int64_t{0}, int64_t{1} << 16));
  sub->add_option("--reps", o->reps, "repetitions (after one warm-up)")->check(CLI::Range(1, 1000));
  sub->add_flag("--memory", o->memory_only, "only measure the read bandwidth and int8 peak");
  sub->add_option("--tokenizer", o->tokenizer, "tokenizer .bin for llama2.c checkpoints");
  sub->add_option("--kv-cache", o->kv_cache, "KV cache type: f32, f16, bf16, q8_0, q4_0, int8, fp8_e4m3, fp8_e5m2");
  sub->add_flag("--kv-rotate", o->kv_rotate, "Hadamard-rotate each K/V row before rounding it");
  sub->add_option("--act", o->act, "activations of the block linears (default: as the model records them): none, int8 (per token; int8 GEMM with int8 per-channel weights), llm_int8 (int8 with outlier columns in float), fp8_e4m3, fp8_e5m2; int8_static, fp8_e4m3_static (the model's input_scale per linear)");
  sub->add_option("-o,--output", o->out, "also write the JSON result to this file");
  sub->add_flag("--json", o->json, "print JSON instead of a table");
  return [o]() {
    if (o->model.empty() && !o->memory_only) throw Error("bench: give a MODEL, or --memory for the bandwidth alone");
    const CpuFeatures& cpu = cpu_features();
    nlohmann::ordered_json j{{"cpu", cpu.brand}, {"features", cpu.summary()}, {"isa", std::string(active_isa().name)},
                             {"threads", thread_count()}};
    const double bw = measure_read_bandwidth();
    const double peak = measure_int8_peak_gops();
    j["read_bandwidth_gbs"] = bw;
    j["int8_peak_gops"] = peak;
    std::string table = fmt::format("cpu: {} ({})\nkernels: {}, {} threads\nread bandwidth: {:.1f} GB/s, int8 peak: {:.0f} GOP/s\n",
                                    cpu.brand, cpu.summary(), active_isa().name, thread_count(), bw, peak);
    if (!o->memory_only) {
      const Model m = open_model(o->model, o->tokenizer);
      if (o->prompt + o->generate > m.config.context_length) {
        throw Error("bench: -p + -n exceeds the model's context", {.file = o->model, .value = std::to_string(o->prompt + o->generate)});
      }
      const ActQuantOptions act = act_quant_for(m, o->act);
      const ModelSpeed s = measure_model_speed(m, o->prompt, o->generate, o->reps, kv_cache_options(o->kv_cache, o->kv_rotate),
                                               act);
      const double gbs = s.decode.median * static_cast<double>(s.bytes_per_token) / 1e9;
      const double prefill_gops = s.prefill.median * 2.0 * static_cast<double>(m.parameter_count()) / 1e9;
      j["model"] = o->model;
      j["parameters"] = m.parameter_count();
      j["prompt_tokens"] = s.prompt_tokens;
      j["gen_tokens"] = s.generated_tokens;
      j["reps"] = s.reps;
      j["prefill_tps"] = {{"median", s.prefill.median}, {"min", s.prefill.min}, {"max", s.prefill.max}};
      j["decode_tps"] = {{"median", s.decode.median}, {"min", s.decode.min}, {"max", s.decode.max}};
      j["decode_bytes_per_token"] = s.bytes_per_token;
      j["kv_cache"] = o->kv_cache + (o->kv_rotate ? "+rot" : "");
      j["act"] = act.name;
      j["kv_bytes_per_token"] = s.kv_bytes_per_token;
      j["decode_gbs"] = gbs;
      j["decode_bandwidth_fraction"] = bw > 0 ? gbs / bw : 0;
      j["prefill_gops"] = prefill_gops;
      j["prefill_int8_peak_fraction"] = peak > 0 ? prefill_gops / peak : 0;
      table += fmt::format("model: {} ({:.2f} B parameters, {:.1f} MB read per decoded token)\n", o->model,
                           static_cast<double>(m.parameter_count()) / 1e9, static_cast<double>(s.bytes_per_token) / 1e6);
      table += fmt::format("KV cache: {}{}, {} bytes per position\n", o->kv_cache, o->kv_rotate ? " rotated" : "", s.kv_bytes_per_token);
      if (s.prompt_tokens > 0) {
        table += fmt::format("prefill {:>5} tokens: {:8.1f} tok/s (range {:.1f}-{:.1f}), {:.0f} GOP/s = {:.0f}% of int8 peak\n",
                             s.prompt_tokens, s.prefill.median, s.prefill.min, s.prefill.max, prefill_gops,
                             peak > 0 ? 100 * prefill_gops / peak : 0.0);
      }
      if (s.generated_tokens > 0) {
        table += fmt::format("decode  {:>5} tokens: {:8.1f} tok/s (range {:.1f}-{:.1f}), {:.1f} GB/s = {:.0f}% of read bandwidth\n",
                             s.generated_tokens, s.decode.median, s.decode.min, s.decode.max, gbs, bw > 0 ? 100 * gbs / bw : 0.0);
      }
    }
    if (!o->out.empty()) {
      const std::string text = j.dump(2) + "\n";
      AtomicFile f(o->out);
      f.write(text.data(), text.size());
      f.commit();
    }
    fmt::print("{}", o->json ? j.dump(2) + "\n" : table);
    return 0;
  };
}

}  // namespace lowbit::cli
