// `lowbit convert IN -o OUT.gguf [--outtype F | --requantize F]`: any readable model to a
// GGUF file llama.cpp loads. `lowbit convert IN -o DIR [--outtype f16|bf16|f32]`: a plain
// Hugging Face folder (config.json, model.safetensors with HF names and rotate-half q/k,
// tokenizer.json or tokenizer.model, tokenizer_config.json, generation_config.json) that
// transformers loads; matrices dequantized to the 16- or 32-bit type (default f16).
//   --outtype F: every matrix re-stored in F through the quantize pipeline, with its shape
//                fallbacks (rows F cannot hold get the next format of its chain).
//   otherwise:   weights keep their format when GGUF has it. A GPTQ/AWQ/compressed-tensors
//                weight in intN groups becomes the GGUF type that holds its values exactly
//                (q4_0, q4_1, q8_0), with no requantization. Asymmetric int4 whose mins
//                (−scale·zero) are not exact in fp16 becomes q4_1 with the mins rounded; any
//                other (2/3-bit, act-order, nf4, block FP8) is requantized to --requantize
//                (default q8_0). The error of each tensor not kept exactly is reported.
#include <fmt/format.h>

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "lowbit/error.h"
#include "lowbit/model_io.h"
#include "lowbit/quantize.h"
#include "lowbit/exact_gguf.h"

namespace lowbit::cli {
namespace {

struct Requantized {
  std::string tensor, from;
  double relative_rmse;
};

// Relative RMSE of b against a.
double relative_rmse(const std::vector<float>& a, const std::vector<float>& b) {
  double err = 0, ref = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    err += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
    ref += static_cast<double>(a[i]) * a[i];
  }
  return ref > 0 ? std::sqrt(err / ref) : std::sqrt(err);
}

}  // namespace

Runner register_convert(CLI::App& app) {
  auto* sub = app.add_subcommand("convert", "convert a model (HF folder, GPTQ/AWQ/bnb/compressed-tensors checkpoint, GGUF, llama2.c) to GGUF or to a Hugging Face folder");
  struct Options {
    std::string in, out, outtype, requantize = "q8_0", tokenizer, name;
    bool json = false;
  };
  auto o = std::make_shared<Options>();
  sub->add_option("input", o->in, "HF folder (plain or quantized checkpoint), .gguf file or llama2.c checkpoint")->required();
  sub->add_option("output,-o", o->out, "output .gguf path, or a new folder for a Hugging Face model")->required();
  auto* outtype = sub->add_option("--outtype", o->outtype, "re-store every matrix in this GGUF format (f32, f16, bf16, q8_0, ...), with shape fallbacks");
  sub->add_option("--requantize", o->requantize, "GGUF format for quantized-checkpoint weights no GGUF type holds exactly (default q8_0)")
      ->excludes(outtype);
  sub->add_option("--tokenizer", o->tokenizer, "tokenizer .bin for llama2.c checkpoints");
  sub->add_option("--name", o->name, "general.name (default: the input's file name)");
  sub->add_flag("--json", o->json, "print the summary as JSON on stdout");
  return [o]() {
    if (!o->out.ends_with(".gguf")) {  // a Hugging Face folder
      const std::string type = o->outtype.empty() ? "f16" : o->outtype;
      if (type != "f16" && type != "bf16" && type != "f32") {
        throw lowbit::Error("a Hugging Face folder holds f16, bf16 or f32 matrices (quantized layouts: lowbit quantize --export)", {.value = type});
      }
      QuantizeOptions q;
      q.input = o->in;
      q.output = o->out;
      q.recipe = "pure:" + type;
      q.tokenizer = o->tokenizer;
      const QuantizeReport r = quantize_model(q);
      fmt::print(stderr, "wrote {}: {} parameters, {:.2f} MB\n", o->out, r.parameters, r.file_bytes / 1e6);
      return 0;
    }
    if (!o->outtype.empty()) {
      const Format& f = format_by_name(o->outtype);
      if (f.gguf_type == kNotGguf) throw lowbit::Error("format has no GGUF type", {.value = o->outtype});
      QuantizeOptions q;
      q.input = o->in;
      q.output = o->out;
      q.recipe = "pure:" + o->outtype;
      q.tokenizer = o->tokenizer;
      q.name = o->name;
      const QuantizeReport r = quantize_model(q);
      for (const auto& f : r.fallbacks) fmt::print(stderr, "fallback: {}\n", f);
      fmt::print(stderr, "wrote {}: {} parameters, {:.2f} MB, {:.3f} bits per weight\n", o->out, r.parameters, r.file_bytes / 1e6, r.bits_per_weight());
      return 0;
    }
    Model m = open_model(o->in, o->tokenizer);  // save_gguf refuses to write over m's files
    const Format& requant = format_by_name(o->requantize);
    if (requant.gguf_type == kNotGguf) throw lowbit::Error("--requantize format has no GGUF type", {.value = o->requantize});
    std::map<std::string, int> lossless;  // "int4_g128_sym -> q4_0" -> tensors
    std::vector<Requantized> requantized;
    auto convert = [&](Weight& w) {
      if (w.rows == 1) {  // norms and biases: f32, as llama.cpp keeps them
        if (w.format->name != std::string_view("f32")) {
          const std::vector<float> x = w.to_f32();
          auto bytes = std::make_shared<const std::vector<uint8_t>>(quantize_tensor(format_by_name("f32"), x, 1, w.cols));
          w = Weight{w.name, &format_by_name("f32"), 1, w.cols, *bytes, bytes};
        }
        return;
      }
      const bool imported_float = !m.quant_method.empty() && w.rows > 1 && w.format->name == std::string_view("f32") &&
                                  w.name != "token_embd.weight" && w.name != "output.weight";
      if (w.format->gguf_type != kNotGguf && !imported_float) return;
      if (auto exact = exact_gguf_weight(w)) {
        ++lossless[std::string(w.format->name) + " -> " + std::string(exact->format->name)];
        w = std::move(*exact);
        return;
      }
      const std::vector<float> x = w.to_f32();
      if (auto near = exact_gguf_weight(w, true)) {  // asymmetric int4: q4_1 with its mins rounded to fp16
        requantized.push_back({w.name, std::string(w.format->name) + " -> " + std::string(near->format->name) + " (mins rounded)",
                               relative_rmse(x, near->to_f32())});
        w = std::move(*near);
        return;
      }
      const Format& target = format_fits(requant, w.cols) ? requant : format_by_name("f16");
      auto bytes = std::make_shared<const std::vector<uint8_t>>(quantize_tensor(target, x, w.rows, w.cols));
      Weight out{w.name, &target, w.rows, w.cols, *bytes, bytes};
      requantized.push_back({w.name, std::string(w.format->name) + " -> " + std::string(target.name), relative_rmse(x, out.to_f32())});
      w = std::move(out);
    };
    convert(m.token_embd);
    for (auto& l : m.layers) {
      for (Weight* w : {&l.attn_norm, &l.attn_q, &l.attn_k, &l.attn_v, &l.attn_output, &l.ffn_norm, &l.ffn_gate, &l.ffn_up, &l.ffn_down,
                        &l.attn_q_bias, &l.attn_k_bias, &l.attn_v_bias, &l.attn_output_bias, &l.attn_q_norm, &l.attn_k_norm}) {
        if (w->format != nullptr) convert(*w);
      }
    }
    convert(m.output_norm);
    if (m.config.tied_output) {
      m.output = m.token_embd;
      m.output.name = "output.weight";
    } else {
      convert(m.output);
    }
    save_gguf(m, o->out, {.name = o->name});
    if (o->json) {
      nlohmann::ordered_json j;
      j["output"] = o->out;
      j["parameters"] = m.parameter_count();
      j["bytes"] = m.weight_bytes();
      j["lossless"] = lossless;
      j["requantized"] = nlohmann::ordered_json::array();
      for (const auto& r : requantized) j["requantized"].push_back({{"tensor", r.tensor}, {"conversion", r.from}, {"relative_rmse", r.relative_rmse}});
      fmt::print("{}\n", j.dump(2));
    }
    for (const auto& [what, n] : lossless) fmt::print(stderr, "kept without requantization: {} tensors {}\n", n, what);
    for (const auto& r : requantized) fmt::print(stderr, "requantized {} ({}): relative RMSE {:.3e}\n", r.tensor, r.from, r.relative_rmse);
    fmt::print(stderr, "wrote {}: {} tensors, {} parameters, {:.2f} MB, {:.3f} bits per weight\n", o->out, m.weights().size(),
               m.parameter_count(), m.weight_bytes() / 1e6, 8.0 * m.weight_bytes() / m.parameter_count());
    return 0;
  };
}

}  // namespace lowbit::cli
