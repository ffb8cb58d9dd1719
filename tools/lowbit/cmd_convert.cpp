// `lowbit convert IN OUT.gguf [--outtype F]`: any readable model to a GGUF file llama.cpp
// loads (matrices optionally re-stored in another GGUF format; norms stay f32).
#include <fmt/format.h>

#include "commands.h"
#include "lowbit/error.h"
#include "lowbit/model_io.h"

namespace lowbit::cli {

Runner register_convert(CLI::App& app) {
  auto* sub = app.add_subcommand("convert", "convert a model (HF folder, GGUF, llama2.c) to GGUF");
  struct Options {
    std::string in, out, outtype, tokenizer, name;
  };
  auto o = std::make_shared<Options>();
  sub->add_option("input", o->in, "HF folder, .gguf file or llama2.c checkpoint")->required();
  sub->add_option("output,-o", o->out, "output .gguf path")->required();
  sub->add_option("--outtype", o->outtype, "store matrices as this GGUF format (f32, f16, bf16, q8_0, ...; default: as read)");
  sub->add_option("--tokenizer", o->tokenizer, "tokenizer .bin for llama2.c checkpoints");
  sub->add_option("--name", o->name, "general.name (default: the input's file name)");
  return [o]() {
    if (!o->out.ends_with(".gguf")) throw lowbit::Error("output must be a .gguf file", {.file = o->out});
    Model m = open_model(o->in, o->tokenizer);  // save_gguf refuses to write over m's files
    if (!o->outtype.empty()) {
      const Format& f = format_by_name(o->outtype);
      if (f.gguf_type == kNotGguf) throw lowbit::Error("format has no GGUF type", {.value = o->outtype});
      m = convert_weights(m, f);
    }
    save_gguf(m, o->out, {.name = o->name});
    fmt::print(stderr, "wrote {}: {} tensors, {} parameters, {:.2f} MB, {:.3f} bits per weight\n", o->out,
               m.weights().size(), m.parameter_count(), m.weight_bytes() / 1e6, 8.0 * m.weight_bytes() / m.parameter_count());
    return 0;
  };
}

}  // namespace lowbit::cli
