// Synthetic models (synth.h): the shape table, seeded weights encoded row-chunk by row-chunk
// in parallel (one tensor in memory at a time), and the GGUF writer.
#include "lowbit/synth.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <vector>

#include "io/gguf_llama.h"
#include "lowbit/error.h"
#include "lowbit/format.h"
#include "lowbit/gguf.h"
#include "quant/encode_weight.h"

namespace lowbit {
namespace {

ModelConfig llama_config(int64_t dim, int64_t hidden, int64_t layers, int64_t heads, int64_t kv_heads, int64_t vocab,
                         int64_t context, float rope_theta, bool tied) {
  ModelConfig c;
  c.dim = dim;
  c.hidden_dim = hidden;
  c.n_layers = layers;
  c.n_heads = heads;
  c.n_kv_heads = kv_heads;
  c.vocab_size = vocab;
  c.context_length = context;
  c.rope_theta = rope_theta;
  c.norm_eps = 1e-5f;
  c.tied_output = tied;
  return c;
}

const SynthShape kShapes[] = {
    {"tinyllama-1.1b", "TinyLlama 1.1B", llama_config(2048, 5632, 22, 32, 4, 32000, 2048, 10000.0f, false)},
    {"llama-7b", "Llama 2 7B", llama_config(4096, 11008, 32, 32, 32, 32000, 4096, 10000.0f, false)},
    {"llama-13b", "Llama 2 13B", llama_config(5120, 13824, 40, 40, 40, 32000, 4096, 10000.0f, false)},
    {"mistral-7b", "Mistral 7B v0.1 (without the sliding window)", llama_config(4096, 14336, 32, 32, 8, 32000, 32768, 10000.0f, false)},
    {"llama3-8b", "Llama 3 / 3.1 8B", llama_config(4096, 14336, 32, 32, 8, 128256, 8192, 500000.0f, false)},
    {"llama3.2-1b", "Llama 3.2 1B (tied embeddings)", llama_config(2048, 8192, 16, 32, 8, 128256, 131072, 500000.0f, true)},
    {"llama3.2-3b", "Llama 3.2 3B (tied embeddings)", llama_config(3072, 8192, 28, 24, 8, 128256, 131072, 500000.0f, true)},
};

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Row `row` of tensor `tensor`: 0.02 · (Irwin-Hall sum of four uniforms, standardised),
// close to N(0, 0.02) with tails cut at 3.5 sigma; a function of (seed, tensor, row) only.
void fill_row(uint64_t seed, uint64_t tensor, int64_t row, int64_t cols, float* x) {
  uint64_t state = splitmix64(seed ^ splitmix64(tensor * 0x100000001B3ull ^ static_cast<uint64_t>(row) << 20));
  constexpr float kScale = 0.02f * 1.7320508f / 65536.0f;  // 1/sqrt(1/3) per unit of the sum
  for (int64_t c = 0; c < cols; ++c) {
    const uint64_t r = splitmix64(state++);
    const float sum = static_cast<float>((r & 0xFFFF) + ((r >> 16) & 0xFFFF) + ((r >> 32) & 0xFFFF) + (r >> 48));
    x[c] = (sum - 2.0f * 65536.0f) * kScale;
  }
}

struct SynthTensor {
  std::string name;
  int64_t rows, cols;  // rows = 1: a norm (f32 ones)
};

std::vector<SynthTensor> tensor_list(const ModelConfig& c) {
  std::vector<SynthTensor> t{{"token_embd.weight", c.vocab_size, c.dim}};
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    t.push_back({p + "attn_norm.weight", 1, c.dim});
    t.push_back({p + "attn_q.weight", c.dim, c.dim});
    t.push_back({p + "attn_k.weight", c.kv_dim(), c.dim});
    t.push_back({p + "attn_v.weight", c.kv_dim(), c.dim});
    t.push_back({p + "attn_output.weight", c.dim, c.dim});
    t.push_back({p + "ffn_norm.weight", 1, c.dim});
    t.push_back({p + "ffn_gate.weight", c.hidden_dim, c.dim});
    t.push_back({p + "ffn_up.weight", c.hidden_dim, c.dim});
    t.push_back({p + "ffn_down.weight", c.dim, c.hidden_dim});
  }
  t.push_back({"output_norm.weight", 1, c.dim});
  if (!c.tied_output) t.push_back({"output.weight", c.vocab_size, c.dim});
  return t;
}

// The tensor's bytes in `format`, rows generated and encoded in chunks, chunks in parallel.
std::vector<uint8_t> make_tensor(const SynthTensor& t, uint64_t index, uint64_t seed, const Format& format) {
  std::vector<uint8_t> out(format.tensor_bytes(t.rows, t.cols));
  const uint64_t row_bytes = format_row_bytes(format, t.cols);
  const int64_t chunk = std::max<int64_t>(1, (int64_t{1} << 16) / t.cols);
  const int64_t chunks = (t.rows + chunk - 1) / chunk;
#pragma omp parallel if (chunks > 1)
  {
    std::vector<float> x(static_cast<size_t>(chunk * t.cols));
#pragma omp for schedule(dynamic, 1)
    for (int64_t c = 0; c < chunks; ++c) {
      const int64_t r0 = c * chunk, r1 = std::min(t.rows, r0 + chunk);
      for (int64_t r = r0; r < r1; ++r) fill_row(seed, index, r, t.cols, x.data() + (r - r0) * t.cols);
      encode_rows(format, x.data(), r1 - r0, t.cols, nullptr, out.data() + r0 * row_bytes, r0);
    }
  }
  return out;
}

}  // namespace

std::span<const SynthShape> synth_shapes() { return kShapes; }

const SynthShape& synth_shape_by_name(std::string_view name) {
  std::string known;
  for (const SynthShape& s : kShapes) {
    if (s.name == name) return s;
    known += (known.empty() ? "" : ", ") + std::string(s.name);
  }
  throw Error("unknown model shape (known: " + known + ")", {.value = std::string(name)});
}

SynthReport synth_model(const SynthOptions& o) {
  const auto t0 = std::chrono::steady_clock::now();
  const SynthShape& shape = synth_shape_by_name(o.shape);
  const Format& format = format_by_name(o.format);
  const Format& f32 = format_by_name("f32");
  if (format.gguf_type == kNotGguf || !format.row_local) {
    throw Error("format has no GGUF type: synth writes GGUF files", {.file = o.output, .value = o.format});
  }
  if (!o.output.ends_with(".gguf")) throw Error("the output must be a .gguf file", {.file = o.output});
  ModelConfig c = shape.config;
  if (o.layers < 0 || o.layers > 1024) throw Error("--layers must be between 1 and 1024", {.value = std::to_string(o.layers)});
  if (o.layers > 0) c.n_layers = o.layers;
  for (const int64_t cols : {c.dim, c.hidden_dim}) {
    if (!format_fits(format, cols)) {
      throw Error("rows of " + std::to_string(cols) + " do not fit " + std::string(format.name) + "'s blocks of " +
                      std::to_string(format.block_size),
                  {.value = std::string(shape.name)});
    }
  }
  Model m;
  m.config = c;
  m.source = o.output;
  m.tokenizer = tokenizer_from_gguf_vocab(synth_vocab(c.vocab_size), "synthetic vocabulary");
  const auto tensors = tensor_list(c);
  std::vector<GgufTensorInfo> infos;
  for (const SynthTensor& t : tensors) {
    const bool norm = t.rows == 1;
    infos.push_back({t.name, norm ? std::vector<int64_t>{t.cols} : std::vector<int64_t>{t.cols, t.rows},
                     norm ? f32.gguf_type : format.gguf_type});
  }
  GgufStreamWriter writer(o.output, llama_gguf_metadata(m, std::string(shape.name), llama_file_type(format)), infos);
  SynthReport report;
  uint64_t written = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const SynthTensor& t = tensors[i];
    if (o.progress) o.progress(static_cast<int64_t>(i), static_cast<int64_t>(tensors.size()), written, t.name);
    std::vector<uint8_t> bytes;
    if (t.rows == 1) {
      const std::vector<float> ones(static_cast<size_t>(t.cols), 1.0f);
      bytes = quantize_tensor(f32, ones, 1, t.cols);
    } else {
      bytes = make_tensor(t, i, o.seed, format);
    }
    writer.write_next(bytes);
    written += bytes.size();
    report.parameters += t.rows * t.cols;
  }
  writer.commit();
  if (o.progress) o.progress(static_cast<int64_t>(tensors.size()), static_cast<int64_t>(tensors.size()), written, "");
  report.file_bytes = std::filesystem::file_size(o.output);
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return report;
}

}  // namespace lowbit
