// lowbit synth: the shape table, the synthetic vocabulary (every merge valid, ids as the
// tokenizer encodes them), and the GGUF it writes (loads back with the shape's config, the
// weights ~N(0, 0.02), the same bytes for any thread count, different bytes for another
// seed). llama.cpp loading these files is checked by hand (docs/PERF.md); CI has no llama.cpp.
#include <gtest/gtest.h>

#include <omp.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "lowbit/error.h"
#include "lowbit/model_io.h"
#include "lowbit/synth.h"
#include "test_support.h"

namespace lowbit {
namespace {

std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), {}};
}

TEST(Synth, ShapesAreConsistentAndNamed) {
  ASSERT_GE(synth_shapes().size(), 3u);
  for (const SynthShape& s : synth_shapes()) {
    EXPECT_NO_THROW(s.config.validate(std::string(s.name))) << s.name;
    EXPECT_EQ(s.config.dim % s.config.n_heads, 0) << s.name;
    EXPECT_EQ(&synth_shape_by_name(s.name), &s);
  }
  EXPECT_EQ(synth_shape_by_name("llama3-8b").config.vocab_size, 128256);
  EXPECT_EQ(synth_shape_by_name("tinyllama-1.1b").config.n_kv_heads, 4);
  try {
    synth_shape_by_name("llama-9000b");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tinyllama-1.1b"), std::string::npos) << "lists the known shapes: " << e.what();
  }
}

TEST(Synth, VocabularyHasValidMergesAndRoundTripsText) {
  for (const int64_t size : {int64_t{512}, int64_t{32000}}) {
    const GgufVocab v = synth_vocab(size);
    ASSERT_EQ(static_cast<int64_t>(v.tokens.size()), size);
    EXPECT_EQ(static_cast<int64_t>(v.merges.size()), size - 258);
    EXPECT_EQ(v.token_types.size(), v.tokens.size());
    EXPECT_EQ(v.bos, size - 2);
    EXPECT_EQ(v.eos, size - 1);
    // The loader refuses merges whose parts or result are not tokens, holes and duplicates.
    const auto tok = tokenizer_from_gguf_vocab(v, "synthetic");
    const std::string text = "the quick brown fox jumps over the lazy dog\nZ\xC3\xA9 42 \xE2\x9C\x93";
    const auto ids = tok->encode(text, true);
    ASSERT_FALSE(ids.empty());
    EXPECT_EQ(ids.front(), v.bos);
    EXPECT_EQ(tok->decode(std::vector<int32_t>(ids.begin() + 1, ids.end())), text);
    if (size == 32000) {
      EXPECT_LT(ids.size(), text.size()) << "merges shorten lowercase text";
    }
  }
  EXPECT_THROW(synth_vocab(100), Error);
}

TEST(Synth, WritesALoadableModelDeterministically) {
  const std::string dir = test::temp_dir();
  SynthOptions o{.shape = "tinyllama-1.1b", .format = "q4_0", .output = dir + "/a.gguf", .seed = 7, .layers = 1};
  const SynthReport r = synth_model(o);
  const ModelConfig& shape = synth_shape_by_name("tinyllama-1.1b").config;
  const Model m = load_model(o.output);
  EXPECT_EQ(m.config.dim, shape.dim);
  EXPECT_EQ(m.config.hidden_dim, shape.hidden_dim);
  EXPECT_EQ(m.config.n_kv_heads, shape.n_kv_heads);
  EXPECT_EQ(m.config.vocab_size, shape.vocab_size);
  EXPECT_EQ(m.config.n_layers, 1);
  EXPECT_EQ(m.parameter_count(), r.parameters);
  EXPECT_EQ(m.tokenizer->vocab_size(), shape.vocab_size);
  EXPECT_EQ(std::string(m.layers[0].ffn_up.format->name), "q4_0");
  EXPECT_EQ(std::string(m.layers[0].ffn_norm.format->name), "f32");
  // Weights: mean 0, standard deviation 0.02 (q4_0 adds about 8% of it in rounding noise).
  const auto w = m.layers[0].ffn_down.to_f32();
  double sum = 0, sum2 = 0;
  for (float v : w) {
    sum += v;
    sum2 += static_cast<double>(v) * v;
  }
  const double mean = sum / w.size(), sd = std::sqrt(sum2 / w.size() - mean * mean);
  EXPECT_NEAR(mean, 0.0, 1e-4);
  EXPECT_NEAR(sd, 0.02, 0.002);
  // The same bytes with one thread; other bytes with another seed.
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  o.output = dir + "/b.gguf";
  synth_model(o);
  omp_set_num_threads(threads);
  EXPECT_TRUE(read_bytes(dir + "/a.gguf") == read_bytes(dir + "/b.gguf"));
  o.output = dir + "/c.gguf";
  o.seed = 8;
  synth_model(o);
  EXPECT_FALSE(read_bytes(dir + "/a.gguf") == read_bytes(dir + "/c.gguf"));
  // Formats without a GGUF type, shapes that do not fit and other outputs are refused.
  o.output = dir + "/d.gguf";
  o.format = "nf4";
  EXPECT_THROW(synth_model(o), Error);
  o.format = "q4_0";
  o.output = dir + "/d.safetensors";
  EXPECT_THROW(synth_model(o), Error);
  EXPECT_FALSE(std::filesystem::exists(dir + "/d.gguf"));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace lowbit
