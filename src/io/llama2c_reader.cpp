// llama2.c legacy checkpoints (version 0): seven int32 (dim, hidden_dim, n_layers,
// n_heads, n_kv_heads, vocab_size, seq_len; negative vocab_size = separate classifier),
// then float32 tensors, every one a view into the mapped file. The file size must be
// exactly what the header implies.
#include <cstring>
#include <filesystem>

#include "lowbit/checked_size.h"
#include "lowbit/error.h"
#include "lowbit/mapped_file.h"
#include "lowbit/model_io.h"

namespace lowbit {
namespace {

std::string find_tokenizer_beside(const std::string& path) {
  namespace fs = std::filesystem;
  const auto dir = fs::path(path).parent_path().empty() ? fs::path(".") : fs::path(path).parent_path();
  std::vector<std::string> found;
  for (const auto& e : fs::directory_iterator(dir)) {
    const auto name = e.path().filename().string();
    if (e.is_regular_file() && name.rfind("tok", 0) == 0 && e.path().extension() == ".bin") found.push_back(e.path().string());
  }
  if (found.size() != 1) {
    throw Error(found.empty() ? "no tokenizer (tok*.bin) beside the checkpoint; pass --tokenizer"
                              : "several tok*.bin beside the checkpoint; pass --tokenizer",
                {.file = path});
  }
  return found[0];
}

// The file size the header implies, every step overflow-checked (a hostile header can name
// dimensions whose product wraps).
uint64_t expected_file_bytes(const ModelConfig& c, bool shared_classifier) {
  const char* what = "the checkpoint size its header implies";
  auto mul = [&](std::initializer_list<int64_t> f) {
    uint64_t p = 1;
    for (int64_t v : f) p = checked_mul(p, static_cast<uint64_t>(v), what);
    return p;
  };
  const int64_t L = c.n_layers, kv = c.kv_dim();
  uint64_t floats = 0;
  for (uint64_t part : {mul({c.vocab_size, c.dim}), mul({L, c.dim}), mul({L, c.dim, c.dim}), mul({2, L, kv, c.dim}),
                        mul({L, c.dim, c.dim}), mul({L, c.dim}), mul({3, L, c.dim, c.hidden_dim}), mul({c.dim}),
                        mul({c.context_length, c.head_dim()}), shared_classifier ? 0 : mul({c.vocab_size, c.dim})}) {
    floats = checked_add(floats, part, what);
  }
  return checked_add(28, checked_mul(4, floats, what), what);
}

}  // namespace

Model load_llama2c(const std::string& path, const std::string& tokenizer_path) {
  auto map = std::make_shared<MappedFile>(path);
  const auto bytes = map->bytes();
  if (bytes.size() < 28) {
    throw Error("file too short for the llama2.c header (7 int32)", {.file = path, .value = std::to_string(bytes.size()) + " bytes"});
  }
  int32_t h[7];
  std::memcpy(h, bytes.data(), 28);
  Model m;
  m.source = path;
  ModelConfig& c = m.config;
  c.dim = h[0];
  c.hidden_dim = h[1];
  c.n_layers = h[2];
  c.n_heads = h[3];
  c.n_kv_heads = h[4];
  c.vocab_size = h[5] < 0 ? -static_cast<int64_t>(h[5]) : h[5];
  c.context_length = h[6];
  c.rope_style = RopeStyle::kAdjacentPairs;
  c.norm_eps = 1e-5f;
  c.rope_theta = 10000.0f;
  c.validate(path);
  const bool shared_classifier = h[5] > 0;

  const int64_t head = c.head_dim(), kv = c.kv_dim(), L = c.n_layers;
  uint64_t expected = 0;
  try {
    expected = expected_file_bytes(c, shared_classifier);
  } catch (const Error& e) {
    throw e.with_file(path);
  }
  if (bytes.size() != expected) {
    throw Error(std::string(bytes.size() < expected ? "truncated" : "oversized") +
                    " llama2.c checkpoint: the header implies " + std::to_string(expected) + " bytes",
                {.file = path, .value = std::to_string(bytes.size()) + " bytes"});
  }
  const Format& f32 = format_by_name("f32");
  size_t offset = 28;
  // Consecutive (count, rows, cols) f32 blocks; returns one Weight per count.
  auto take = [&](int64_t count, int64_t rows, int64_t cols) {
    std::vector<std::span<const uint8_t>> parts;
    for (int64_t i = 0; i < count; ++i) {
      const size_t n = static_cast<size_t>(rows * cols) * 4;
      parts.push_back(bytes.subspan(offset, n));
      offset += n;
    }
    return parts;
  };
  auto weight = [&](std::string name, std::span<const uint8_t> data, int64_t rows, int64_t cols) {
    return Weight{std::move(name), &f32, rows, cols, data, nullptr};
  };
  m.token_embd = weight("token_embd.weight", take(1, c.vocab_size, c.dim)[0], c.vocab_size, c.dim);
  m.layers.resize(L);
  const auto rms_att = take(L, 1, c.dim), wq = take(L, c.dim, c.dim), wk = take(L, kv, c.dim),
             wv = take(L, kv, c.dim), wo = take(L, c.dim, c.dim), rms_ffn = take(L, 1, c.dim),
             w1 = take(L, c.hidden_dim, c.dim), w2 = take(L, c.dim, c.hidden_dim), w3 = take(L, c.hidden_dim, c.dim);
  for (int64_t l = 0; l < L; ++l) {
    auto& y = m.layers[l];
    y.attn_norm = weight(layer_tensor_name(l, "attn_norm"), rms_att[l], 1, c.dim);
    y.attn_q = weight(layer_tensor_name(l, "attn_q"), wq[l], c.dim, c.dim);
    y.attn_k = weight(layer_tensor_name(l, "attn_k"), wk[l], kv, c.dim);
    y.attn_v = weight(layer_tensor_name(l, "attn_v"), wv[l], kv, c.dim);
    y.attn_output = weight(layer_tensor_name(l, "attn_output"), wo[l], c.dim, c.dim);
    y.ffn_norm = weight(layer_tensor_name(l, "ffn_norm"), rms_ffn[l], 1, c.dim);
    y.ffn_gate = weight(layer_tensor_name(l, "ffn_gate"), w1[l], c.hidden_dim, c.dim);
    y.ffn_down = weight(layer_tensor_name(l, "ffn_down"), w2[l], c.dim, c.hidden_dim);
    y.ffn_up = weight(layer_tensor_name(l, "ffn_up"), w3[l], c.hidden_dim, c.dim);
  }
  m.output_norm = weight("output_norm.weight", take(1, 1, c.dim)[0], 1, c.dim);
  take(1, c.context_length, head);  // freq_cis_real, freq_cis_imag: unused
  // As llama.cpp's convert-llama2c-to-ggml: a shared classifier becomes its own
  // output.weight (the same bytes), so the GGUF has both tensors.
  m.output = shared_classifier ? weight("output.weight", m.token_embd.data, c.vocab_size, c.dim)
                               : weight("output.weight", take(1, c.vocab_size, c.dim)[0], c.vocab_size, c.dim);
  c.tied_output = false;
  m.keep_alive.push_back(map);
  const std::string tokenizer = tokenizer_path.empty() ? find_tokenizer_beside(path) : tokenizer_path;
  m.files = {path, tokenizer};
  m.tokenizer = load_llama2c_tokenizer(tokenizer, c.vocab_size);
  return m;
}

}  // namespace lowbit
