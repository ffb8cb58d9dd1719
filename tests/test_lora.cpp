// LoRA end to end: adapters written in PEFT's layout read back unchanged; merging them
// into a Hugging Face model and into the same model as GGUF (q/k rows in the other order)
// gives the same logits as the training engine's base + adapter; a short QLoRA run on
// shakespeare-calib lowers shakespeare-test's loss below the NF4 base's; and bad input
// (shapes or names that do not fit, rank 0, data shorter than a window, a NaN loss) is
// refused naming the file, tensor or step.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "lowbit/engine.h"
#include "lowbit/error.h"
#include "lowbit/format.h"
#include "lowbit/lora.h"
#include "lowbit/model_io.h"
#include "lowbit/quantize.h"
#include "lowbit/safetensors.h"
#include "lowbit/train.h"
#include "test_support.h"

namespace lowbit {
namespace {

const char* kModel = "models/shakespeare-llama-4m";

std::vector<int32_t> test_tokens(const Model& m, size_t n) {
  auto t = m.tokenizer->encode(test::read_file(test::shared_path("data/shakespeare-test.txt")), true);
  t.resize(n);
  return t;
}

std::vector<float> logits_of(const Model& m, const std::vector<int32_t>& tokens) {
  Engine e(m, static_cast<int64_t>(tokens.size()));
  e.use_reference_kernels(true);
  std::vector<float> out(tokens.size() * static_cast<size_t>(m.config.vocab_size));
  e.forward(tokens, 0, out.data());
  return out;
}

float max_diff(const std::vector<float>& a, const std::vector<float>& b, float* amax) {
  float err = 0;
  *amax = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    *amax = std::max(*amax, std::fabs(b[i]));
    err = std::max(err, std::fabs(a[i] - b[i]));
  }
  return err;
}

// A TrainModel with adapters of nonzero A and B (so the merge changes the model).
void random_adapters(TrainModel& tm, int64_t rank) {
  int seed = 1;
  tm.add_lora({.rank = rank, .alpha = 16}, [&](TrainTensor& a, TrainTensor& b) {
    a.value = test::gaussian(a.value.size(), seed++, 0.05f);
    b.value = test::gaussian(b.value.size(), seed++, 0.05f);
  });
}

TEST(Lora, PeftFolderRoundTripsAndMergesInEitherRowOrder) {
  const std::string dir = test::temp_dir();
  const Model hf = load_model(test::shared_path(kModel));
  TrainModel tm(hf);
  random_adapters(tm, 4);
  save_peft_adapter(tm, dir + "/adapter", test::shared_path(kModel), "f32");
  const SafetensorsFile st(dir + "/adapter/adapter_model.safetensors");
  ASSERT_NE(st.find("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"), nullptr);
  EXPECT_EQ(st.tensor("base_model.model.model.layers.3.mlp.down_proj.lora_B.weight").shape, (std::vector<int64_t>{256, 4}));
  const LoraAdapter a = load_peft_adapter(dir + "/adapter");
  EXPECT_EQ(a.rank, 4);
  EXPECT_EQ(a.alpha, 16.0f);
  EXPECT_EQ(a.pairs.size(), 28u);
  for (const auto& p : a.pairs) {
    EXPECT_EQ(p.a, tm.param("lora_A." + p.module).value) << p.module;
    EXPECT_EQ(p.b, tm.param("lora_B." + p.module).value) << p.module;
  }
  // The same adapter merged into the Hugging Face folder and into a GGUF of the same
  // weights (adjacent q/k pairs) gives one function.
  QuantizeOptions q;
  q.input = test::shared_path(kModel);
  q.output = dir + "/f32.gguf";
  q.recipe = "pure:f32";
  quantize_model(q);
  Model merged_hf = load_model(test::shared_path(kModel)), merged_gguf = load_model(dir + "/f32.gguf");
  ASSERT_EQ(merged_gguf.config.rope_style, RopeStyle::kAdjacentPairs);
  merge_lora(merged_hf, a);
  merge_lora(merged_gguf, a);
  const auto tokens = test_tokens(hf, 40);
  const auto lh = logits_of(merged_hf, tokens), lg = logits_of(merged_gguf, tokens), base = logits_of(hf, tokens);
  float amax = 0, bmax = 0;
  const float same = max_diff(lg, lh, &amax), changed = max_diff(base, lh, &bmax);
  EXPECT_LE(same, 1e-4f * amax);
  EXPECT_GT(changed, 1e-2f * bmax) << "the adapter changes the model";
  // The training engine's loss of base + adapter is the merged model's.
  std::vector<int32_t> window(tokens.begin(), tokens.begin() + 33);
  double nll = 0;
  const int64_t V = hf.config.vocab_size;
  for (int64_t t = 0; t < 32; ++t) {
    const float* l = lh.data() + t * V;
    const float mx = *std::max_element(l, l + V);
    double sum = 0;
    for (int64_t i = 0; i < V; ++i) sum += std::exp(static_cast<double>(l[i] - mx));
    nll += -(l[window[t + 1]] - mx - std::log(sum));
  }
  EXPECT_NEAR(tm.loss(window, 1, 32), nll / 32, 1e-4);
}

TEST(Lora, MergedBf16FolderGivesBasePlusAdapterLogits) {
  const std::string dir = test::temp_dir();
  const Model hf = load_model(test::shared_path(kModel));
  TrainModel tm(hf);
  random_adapters(tm, 8);
  save_peft_adapter(tm, dir + "/adapter", test::shared_path(kModel), "nf4_dq");
  QuantizeOptions q;
  q.input = test::shared_path(kModel);
  q.output = dir + "/merged";
  q.recipe = "pure:bf16";
  const LoraAdapter a = load_peft_adapter(dir + "/adapter");
  EXPECT_EQ(a.base_format, "nf4_dq");
  q.transform = [&](Model& m) {
    round_decoder_linears(m, format_by_name(a.base_format));
    merge_lora(m, a);
  };
  quantize_model(q);
  Model in_memory = load_model(test::shared_path(kModel));
  apply_lora_adapter(in_memory, dir + "/adapter");  // rounds to nf4_dq first, as recorded
  const Model merged = load_model(dir + "/merged");
  EXPECT_EQ(merged.layers[0].attn_q.format->name, std::string_view("bf16"));
  const auto tokens = test_tokens(hf, 40);
  const auto want = logits_of(in_memory, tokens), got = logits_of(merged, tokens);
  float amax = 0;
  // bf16 keeps 8 significant bits: each weight within 2^-9 of itself; through the 4 blocks
  // and the output the logits stay within a few hundredths of their scale.
  const float err = max_diff(got, want, &amax);
  EXPECT_LE(err, 0.03f * amax);
  EXPECT_GT(err, 0.0f);
}

// A short QLoRA run (nf4_dq base, rank 8) on shakespeare-calib: shakespeare-test's loss
// falls below the NF4 base's.
TEST(Lora, QloraLowersHeldOutLoss) {
  const Model hf = load_model(test::shared_path(kModel));
  TrainModel tm(hf);
  tm.freeze_base(format_by_name("nf4_dq"));
  tm.add_lora({});
  const auto calib = hf.tokenizer->encode(test::read_file(test::shared_path("data/shakespeare-calib.txt")), true);
  auto held = test_tokens(hf, 4 * 129);
  const float before = tm.loss(held, 4, 128);
  TrainOptions o;
  o.steps = 40;
  o.batch = 4;
  o.seq_len = 64;
  o.warmup = 5;
  o.adamw.lr = 2e-3f;
  const TrainReport r = train_steps(tm, calib, o);
  ASSERT_EQ(r.losses.size(), 40u);
  const float after = tm.loss(held, 4, 128);
  EXPECT_LT(after, before - 0.01f) << "held-out loss " << before << " -> " << after;
}

// A run stopped after step 3 (checkpoints every 2 steps) and resumed ends with the same
// adapters, bit for bit, as one that never stopped; a checkpoint of other options is refused.
TEST(Lora, ResumedRunEndsAsAnUninterruptedOne) {
  const std::string dir = test::temp_dir();
  const Model hf = load_model(test::shared_path(kModel));
  const auto calib = hf.tokenizer->encode(test::read_file(test::shared_path("data/shakespeare-calib.txt")), true);
  const Format& base = format_by_name("nf4_dq");
  TrainOptions o;
  o.steps = 6;
  o.batch = 2;
  o.seq_len = 32;
  o.warmup = 2;
  TrainModel straight(hf, &base);
  straight.add_lora({});
  train_steps(straight, calib, o);

  o.checkpoint = dir + "/ck";
  o.save_every = 2;
  TrainModel killed(hf, &base);
  killed.add_lora({});
  o.progress = [](int64_t done, int64_t, float, float) {
    if (done == 3) throw Error("killed");
  };
  EXPECT_THROW(train_steps(killed, calib, o), Error);
  ASSERT_TRUE(std::filesystem::exists(dir + "/ck/state.safetensors"));
  o.progress = {};
  o.resume = true;
  TrainModel resumed(hf, &base);
  resumed.add_lora({});
  const TrainReport r = train_steps(resumed, calib, o);
  EXPECT_EQ(r.losses.size(), 4u);  // steps 3..6
  for (size_t k = 0; k < straight.params().size(); ++k) {
    if (straight.params()[k].trainable) {
      EXPECT_EQ(resumed.params()[k].value, straight.params()[k].value) << straight.params()[k].name;
    }
  }
  o.batch = 3;
  TrainModel other(hf, &base);
  other.add_lora({});
  try {
    train_steps(other, calib, o);
    ADD_FAILURE() << "resumed with another batch size";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("other training options"), std::string::npos) << e.what();
  }
}

TEST(Lora, BadInputIsRefusedWithItsName) {
  const std::string dir = test::temp_dir();
  const Model hf = load_model(test::shared_path(kModel));
  TrainModel tm(hf);
  random_adapters(tm, 4);
  save_peft_adapter(tm, dir + "/adapter", "base", "f32");
  EXPECT_THROW(save_peft_adapter(tm, dir + "/adapter", "base", "f32"), Error);  // not over a folder
  // Shapes: the adapter onto another model (stories260K: 64 wide).
  Model other = load_model(test::shared_path("models/stories260K/stories260K.bin"),
                           {.tokenizer_path = test::shared_path("models/stories260K/tok512.bin")});
  try {
    merge_lora(other, load_peft_adapter(dir + "/adapter"));
    ADD_FAILURE() << "merged an adapter of another shape";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model.layers.0."), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("adapter"), std::string::npos) << e.what();
  }
  // Names: a module the model does not have.
  {
    const SafetensorsFile st(dir + "/adapter/adapter_model.safetensors");
    std::vector<TensorToWrite> tensors;
    for (const auto& t : st.tensors()) {
      std::string name = t.name;
      if (name.find("layers.0.self_attn.q_proj") != std::string::npos) name.replace(name.find("q_proj"), 6, "x_proj");
      tensors.push_back({name, t.dtype, t.shape, t.data});
    }
    std::filesystem::create_directories(dir + "/renamed");
    write_safetensors(dir + "/renamed/adapter_model.safetensors", tensors);
    std::filesystem::copy_file(dir + "/adapter/adapter_config.json", dir + "/renamed/adapter_config.json");
  }
  Model m = load_model(test::shared_path(kModel));
  try {
    merge_lora(m, load_peft_adapter(dir + "/renamed"));
    ADD_FAILURE() << "merged an unknown module";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("x_proj"), std::string::npos) << e.what();
  }
  // Rank 0 in the config, and rank 0 asked for.
  {
    std::ifstream in(dir + "/adapter/adapter_config.json");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    text.replace(text.find("\"r\": 4"), 6, "\"r\": 0");
    std::filesystem::create_directories(dir + "/rank0");
    std::ofstream(dir + "/rank0/adapter_config.json") << text;
    std::filesystem::copy_file(dir + "/adapter/adapter_model.safetensors", dir + "/rank0/adapter_model.safetensors");
  }
  EXPECT_THROW(load_peft_adapter(dir + "/rank0"), Error);
  TrainModel fresh(hf);
  EXPECT_THROW(fresh.add_lora({.rank = 0}), Error);
  // Data shorter than one window names the file.
  TrainOptions o;
  o.seq_len = 64;
  o.source = "short.txt";
  const std::vector<int32_t> few(30, 5);
  try {
    train_steps(fresh, few, o);
    ADD_FAILURE() << "trained on 30 tokens with windows of 65";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("short.txt"), std::string::npos) << e.what();
  }
  // A NaN loss stops at its step and leaves the parameters as they were.
  TrainModel broken(hf);
  broken.add_lora({});
  broken.param("model.norm.weight").value[3] = std::nanf("");
  const auto before = broken.param("lora_A.model.layers.0.self_attn.q_proj").value;
  const auto calib = hf.tokenizer->encode(test::read_file(test::shared_path("data/shakespeare-calib.txt")), true);
  o.steps = 3;
  o.source = "calib.txt";
  try {
    train_steps(broken, calib, o);
    ADD_FAILURE() << "trained through a NaN loss";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("step 1"), std::string::npos) << e.what();
  }
  EXPECT_EQ(broken.param("lora_A.model.layers.0.self_attn.q_proj").value, before);
}

}  // namespace
}  // namespace lowbit
