// Hostile input, end to end through the CLI: every case in ../shared/testdata/hostile
// (found by an outside fuzzing campaign) and the other findings of that campaign. Each
// bad input must give exit status 1 and exactly one "lowbit: error:" line naming the file
// and the field or value: no signal, no sanitizer report, no "internal error", and no
// input file changed.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "lowbit/error.h"
#include "lowbit/gguf.h"
#include "lowbit/model_io.h"
#include "test_support.h"

namespace lowbit {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct CliResult {
  int status = -1;  // exit status; 128 + N for signal N
  std::string out, err;
};

std::string quote(const std::string& s) { return "'" + s + "'"; }

// Runs `lowbit ARGS` (ARGS already shell-quoted) with no standard input.
CliResult run_cli(const std::string& args, const std::string& prefix = "") {
  static int counter = 0;
  const std::string dir = (fs::temp_directory_path() / ("lowbit-hostile-" + std::to_string(::getpid()))).string();
  fs::create_directories(dir);
  const std::string out = dir + "/out" + std::to_string(counter), err = dir + "/err" + std::to_string(counter);
  ++counter;
  const std::string cmd = prefix + quote(LOWBIT_CLI) + " " + args + " </dev/null >" + out + " 2>" + err;
  const int raw = std::system(cmd.c_str());
  CliResult r;
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
  r.out = test::read_file(out);
  r.err = test::read_file(err);
  return r;
}

std::vector<std::string> lines_starting(const std::string& text, const std::string& prefix) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t end = text.find('\n', pos);
    const std::string line = text.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
    if (line.starts_with(prefix)) out.push_back(line);
    if (end == std::string::npos) break;
    pos = end + 1;
  }
  return out;
}

// Exit 1, one "lowbit: error:" line holding every string of `names`, nothing else alarming.
void expect_clean_error(const CliResult& r, const std::vector<std::string>& names, const std::string& what) {
  SCOPED_TRACE(what + "\nstderr: " + r.err.substr(0, 2000));
  EXPECT_EQ(r.status, 1);
  const auto errors = lines_starting(r.err, "lowbit: error:");
  ASSERT_EQ(errors.size(), 1u);
  for (const auto& n : names) EXPECT_NE(errors[0].find(n), std::string::npos) << "the message must name " << n;
  for (const char* bad : {"internal error", "runtime error", "Sanitizer", "terminate called", "libgomp"}) {
    EXPECT_EQ(r.err.find(bad), std::string::npos) << bad;
  }
  EXPECT_LT(errors[0].size(), 600u) << "a bounded message";
}

// A copy of a shared model folder with one file replaced by `replacement` (if given).
std::string model_copy(const std::string& dir, const std::string& model, const std::string& file = "",
                       const std::string& replacement = "") {
  fs::create_directories(dir);
  fs::copy(test::shared_path("models/" + model), dir, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  for (const auto& e : fs::directory_iterator(dir)) fs::permissions(e.path(), fs::perms::owner_write, fs::perm_options::add);
  if (!file.empty()) fs::copy_file(replacement, dir + "/" + file, fs::copy_options::overwrite_existing);
  return dir;
}

std::string ppl_line(const std::string& out) {
  const auto l = lines_starting(out, "PPL = ");
  return l.empty() ? "" : l[0];
}

const std::string kText = "data/tinystories-sample-4k.txt";

TEST(Hostile, EverySharedCaseIsRefusedCleanly) {
  const std::string tmp = test::temp_dir();
  const std::string hostile = test::shared_path("testdata/hostile");
  const std::string stories = test::shared_path("models/stories260K/stories260K.bin");
  int cases = 0;
  for (const auto& e : fs::directory_iterator(hostile)) {
    const std::string name = e.path().filename().string();
    if (name == "README.md") continue;
    SCOPED_TRACE(name);
    ++cases;
    if (name.starts_with("recipe_")) {
      const auto r = run_cli("quantize " + quote(stories) + " -o " + quote(tmp + "/r.gguf") + " --recipe " + quote(e.path()));
      expect_clean_error(r, {name, "rules[0].layers"}, name);
      EXPECT_FALSE(fs::exists(tmp + "/r.gguf"));
      continue;
    }
    if (name == "llama2c_overflow.bin") {
      const auto r = run_cli("info " + quote(e.path()) + " --tokenizer " + quote(test::shared_path("models/stories260K/tok512.bin")));
      expect_clean_error(r, {name, "size overflow"}, name);
      EXPECT_EQ(r.err.find("15246649666416345372"), std::string::npos) << "no wrapped number";
      continue;
    }
    // NAME.FILE replaces FILE in a copy of tinystories-656k.
    const std::string stem = name.substr(0, name.find('.')), file = name.substr(name.find('.') + 1);
    const std::string dir = model_copy(tmp + "/" + stem, "tinystories-656k", file, e.path());
    if (stem == "st_header_len_2mod4") {
      // A valid file whose tensor data is not float-aligned: it must run, and give the
      // same perplexity as the aligned original.
      const std::string args = " -f " + quote(test::shared_path(kText)) + " -c 32 --chunks 4";
      const auto r = run_cli("perplexity " + quote(dir) + args);
      const auto base = run_cli("perplexity " + quote(test::shared_path("models/tinystories-656k")) + args);
      EXPECT_EQ(r.status, 0) << r.err;
      EXPECT_EQ(ppl_line(r.out), ppl_line(base.out));
      EXPECT_NE(ppl_line(r.out), "");
      continue;
    }
    const auto r = stem == "deep_tokenizer" ? run_cli("generate " + quote(dir) + " -p hi -n 2") : run_cli("info " + quote(dir));
    expect_clean_error(r, {dir + "/" + file}, name);
    if (stem.starts_with("cfg_")) {
      // The key of the wrong type is named: cfg_tie_num -> tie_word_embeddings, ...
      const json j = json::parse(test::read_file(e.path()));
      bool named = false;
      for (const char* key : {"attention_bias", "hidden_act", "mlp_bias", "model_type", "tie_word_embeddings"}) {
        named = named || r.err.find(key) != std::string::npos;
      }
      EXPECT_TRUE(named);
    }
  }
  EXPECT_EQ(cases, 18);
}

TEST(Hostile, OptionsAreValidated) {
  const std::string stories = quote(test::shared_path("models/stories260K/stories260K.bin"));
  const std::string text = quote(test::shared_path(kText));
  const std::string tmp = test::temp_dir();
  expect_clean_error(run_cli("imatrix " + stories + " -f " + text + " -c 0 -o " + quote(tmp + "/i.gguf")), {"-c", "value: 0"}, "imatrix -c 0");
  expect_clean_error(run_cli("imatrix " + stories + " -f " + text + " -c 1 -o " + quote(tmp + "/i.gguf")), {"-c", "value: 1"}, "imatrix -c 1");
  expect_clean_error(run_cli("imatrix " + stories + " -f " + text + " -c 4096 -o " + quote(tmp + "/i.gguf")), {"-c", "512"}, "imatrix -c > context");
  expect_clean_error(run_cli("perplexity " + stories + " -f " + text + " -c 100000"), {"-c", "512"}, "perplexity -c > context");
  expect_clean_error(run_cli("perplexity " + stories + " -f " + text + " -c 3"), {"-c"}, "perplexity -c 3");
  for (const char* chunks : {"0", "-1"}) {
    expect_clean_error(run_cli("perplexity " + stories + " -f " + text + " --chunks " + chunks), {"--chunks", chunks}, "--chunks");
    expect_clean_error(run_cli("eval " + stories + " " + stories + " -f " + text + " --chunks " + chunks), {"--chunks"}, "eval --chunks");
  }
  expect_clean_error(run_cli("generate " + stories + " -n 0"), {"--n-predict", "0"}, "generate -n 0");
  expect_clean_error(run_cli("--threads 100000 info " + stories), {"--threads", "100000"}, "--threads too many");
  expect_clean_error(run_cli("--threads -3 info " + stories), {"--threads", "-3"}, "--threads negative");
  EXPECT_FALSE(fs::exists(tmp + "/i.gguf"));
#ifndef LOWBIT_SANITIZED  // ASan reserves terabytes of address space: no ulimit -v under it
  // 1000 threads of 8 MB stacks do not fit in 2 GB of address space.
  const auto r = run_cli("--threads 1000 perplexity " + stories + " -f " + text + " -c 64 --chunks 1", "ulimit -s 8192; ulimit -v 2000000; ");
  expect_clean_error(r, {"cannot create 1000 threads"}, "--threads 1000 under a memory limit");
#endif
}

TEST(Hostile, NoCommandWritesOverItsInput) {
  const std::string tmp = test::temp_dir();
  const std::string text = test::shared_path(kText);
  fs::copy(test::shared_path("models/stories260K/stories260K.bin"), tmp + "/m.bin");
  fs::copy(test::shared_path("models/stories260K/tok512.bin"), tmp + "/tok512.bin");
  const std::string model = tmp + "/m.bin", gguf = tmp + "/m.gguf";
  ASSERT_EQ(run_cli("convert " + quote(model) + " -o " + quote(gguf)).status, 0);
  fs::create_symlink(gguf, tmp + "/link.gguf");
  fs::create_hard_link(gguf, tmp + "/hard.gguf");
  const std::string model_bytes = test::read_file(model), gguf_bytes = test::read_file(gguf), text_bytes = test::read_file(text);

  expect_clean_error(run_cli("imatrix " + quote(model) + " -f " + quote(text) + " -c 64 -o " + quote(model)), {"overwrite", model}, "imatrix -o MODEL");
  expect_clean_error(run_cli("imatrix " + quote(model) + " -f " + quote(text) + " -c 64 -o " + quote(tmp + "/tok512.bin")), {"overwrite"}, "imatrix -o TOKENIZER");
  for (const std::string& out : {gguf, tmp + "/link.gguf", tmp + "/hard.gguf", tmp + "/./m.gguf"}) {
    expect_clean_error(run_cli("convert " + quote(gguf) + " -o " + quote(out)), {"overwrite"}, "convert X -o " + out);
    expect_clean_error(run_cli("quantize " + quote(gguf) + " -o " + quote(out) + " --recipe q8_0"), {"overwrite"}, "quantize X -o " + out);
  }
  expect_clean_error(run_cli("perplexity " + quote(gguf) + " -f " + quote(text) + " -c 64 --save-logits " + quote(gguf)), {"overwrite"}, "--save-logits MODEL");
  expect_clean_error(run_cli("perplexity " + quote(gguf) + " -f " + quote(text) + " -c 64 --save-logits " + quote(text)), {"overwrite"}, "--save-logits TEXT");
  ASSERT_EQ(run_cli("imatrix " + quote(model) + " -f " + quote(text) + " -c 64 --chunks 2 -o " + quote(tmp + "/im.gguf")).status, 0);
  const std::string im_bytes = test::read_file(tmp + "/im.gguf");
  expect_clean_error(run_cli("quantize " + quote(gguf) + " -o " + quote(tmp + "/im.gguf") + " --recipe q4_k_m --imatrix " + quote(tmp + "/im.gguf")),
                     {"overwrite"}, "quantize -o IMATRIX");

  EXPECT_EQ(test::read_file(model), model_bytes);
  EXPECT_EQ(test::read_file(gguf), gguf_bytes);
  EXPECT_EQ(test::read_file(text), text_bytes);
  EXPECT_EQ(test::read_file(tmp + "/im.gguf"), im_bytes);
  EXPECT_TRUE(fs::is_symlink(tmp + "/link.gguf"));
}

// Sets the float at `index` of tensor `name` in a safetensors file to `value`, in place.
void poke_safetensors(const std::string& path, const std::string& name, size_t index, float value) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  uint64_t header_len = 0;
  f.read(reinterpret_cast<char*>(&header_len), 8);
  std::string header(header_len, '\0');
  f.read(header.data(), static_cast<std::streamsize>(header_len));
  const json h = json::parse(header);
  ASSERT_EQ(h.at(name).at("dtype"), "F32");
  f.seekp(static_cast<std::streamoff>(8 + header_len + h.at(name).at("data_offsets")[0].get<uint64_t>() + 4 * index));
  f.write(reinterpret_cast<const char*>(&value), 4);
}

TEST(Hostile, NonFiniteWeightsAreRefusedNormsIncluded) {
  const std::string tmp = test::temp_dir();
  const std::string text = quote(test::shared_path(kText));
  struct Case {
    std::string hf_name, gguf_name;
    size_t index;
    float value;
    std::string where;
  } cases[] = {
      {"model.norm.weight", "output_norm.weight", 5, NAN, "row 0, column 5"},
      {"model.layers.1.mlp.down_proj.weight", "blk.1.ffn_down.weight", 3 * 384 + 7, INFINITY, "row 3, column 7"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.hf_name);
    const std::string dir = model_copy(tmp + "/" + c.gguf_name, "tinystories-656k");
    poke_safetensors(dir + "/model.safetensors", c.hf_name, c.index, c.value);
    for (const std::string& cmd : {"convert " + quote(dir) + " -o " + quote(tmp + "/x.gguf"),
                                   "perplexity " + quote(dir) + " -f " + text + " -c 64",
                                   "generate " + quote(dir) + " -p hi -n 2",
                                   "imatrix " + quote(dir) + " -f " + text + " -c 64 -o " + quote(tmp + "/x.imatrix"),
                                   "quantize " + quote(dir) + " -o " + quote(tmp + "/x.gguf") + " --recipe q8_0",
                                   "eval " + quote(test::shared_path("models/tinystories-656k")) + " " + quote(dir) + " -f " + text + " -c 64"}) {
      expect_clean_error(run_cli(cmd), {c.gguf_name, c.where, "non-finite"}, cmd);
    }
    EXPECT_FALSE(fs::exists(tmp + "/x.gguf"));
    const auto info = run_cli("info " + quote(dir));
    EXPECT_EQ(info.status, 0) << info.err;
    EXPECT_NE(info.out.find(c.gguf_name), std::string::npos);
    EXPECT_NE(info.out.find("non-finite"), std::string::npos) << info.out;
  }
}

TEST(Hostile, ImatrixErrorsNameTheImatrixFile) {
  const std::string tmp = test::temp_dir();
  // Legacy .dat: one entry whose second value is NaN.
  const std::string dat = tmp + "/bad.dat";
  {
    std::ofstream f(dat, std::ios::binary);
    const std::string name = "blk.0.attn_q.weight";
    const int32_t n = 1, len = static_cast<int32_t>(name.size()), ncall = 1, nval = 64;
    f.write(reinterpret_cast<const char*>(&n), 4).write(reinterpret_cast<const char*>(&len), 4).write(name.data(), len);
    f.write(reinterpret_cast<const char*>(&ncall), 4).write(reinterpret_cast<const char*>(&nval), 4);
    for (int i = 0; i < nval; ++i) {
      const float v = i == 1 ? NAN : 1.0f;
      f.write(reinterpret_cast<const char*>(&v), 4);
    }
  }
  const auto r = run_cli("quantize " + quote(test::shared_path("models/stories260K/stories260K.bin")) + " -o " +
                         quote(tmp + "/q.gguf") + " --recipe q4_k_m --imatrix " + quote(dat));
  expect_clean_error(r, {dat, "blk.0.attn_q.weight", "column 1"}, "NaN in an imatrix");
  EXPECT_EQ(r.err.find("stories260K.bin"), std::string::npos) << "the model is not at fault";

  // GGUF imatrix metadata of the wrong type.
  const std::string gguf = tmp + "/bad.gguf";
  std::vector<float> sums(64, 1.0f), count{10.0f};
  auto bytes = [](const std::vector<float>& v) { return std::span(reinterpret_cast<const uint8_t*>(v.data()), 4 * v.size()); };
  write_gguf(gguf, {{"general.type", GgufValue::string("imatrix")}, {"imatrix.datasets", GgufValue::u32(7)}},
             {{"blk.0.attn_q.weight.in_sum2", {64, 1}, 0, bytes(sums)}, {"blk.0.attn_q.weight.counts", {1, 1}, 0, bytes(count)}});
  expect_clean_error(run_cli("quantize " + quote(test::shared_path("models/stories260K/stories260K.bin")) + " -o " +
                             quote(tmp + "/q.gguf") + " --recipe q4_k_m --imatrix " + quote(gguf)),
                     {gguf, "imatrix.datasets"}, "imatrix metadata type");
}

// A tokenizer.json from tinystories-656k, changed by `edit`, loaded in a model copy.
CliResult with_tokenizer(const std::string& dir, const std::function<void(json&)>& edit) {
  model_copy(dir, "tinystories-656k");
  json j = json::parse(test::read_file(dir + "/tokenizer.json"));
  edit(j);
  std::ofstream(dir + "/tokenizer.json") << j.dump();
  return run_cli("generate " + quote(dir) + " -p 'Once upon a time' -n 4 --temp 0");
}

TEST(Hostile, TokenizerAndConfigInconsistenciesAreNotUsedSilently) {
  const std::string tmp = test::temp_dir();
  const std::string tok = "/tokenizer.json";
  expect_clean_error(with_tokenizer(tmp + "/missing", [](json& j) { j["model"]["merges"].push_back("nosuch token"); }),
                     {tok, "merge", "not in the vocabulary", "nosuch token"}, "merge of missing tokens");
  expect_clean_error(with_tokenizer(tmp + "/hole", [](json& j) { j["model"]["vocab"].erase(j["model"]["vocab"].begin()); }),
                     {tok, "no token with id"}, "vocab hole");
  expect_clean_error(with_tokenizer(tmp + "/typed", [](json& j) { j["model"]["byte_fallback"] = "yes"; }),
                     {tok, "model.byte_fallback"}, "type error");
  const auto dup = with_tokenizer(tmp + "/dup", [](json& j) {
    const json first = j["model"]["merges"][0];
    for (int i = 0; i < 500; ++i) j["model"]["merges"].push_back(first);
  });
  EXPECT_EQ(dup.status, 0) << dup.err;
  EXPECT_NE(dup.err.find("lowbit: warning:"), std::string::npos);
  EXPECT_NE(dup.err.find("500 duplicate merge"), std::string::npos) << dup.err;

  // A config that declares fewer layers than the weights hold.
  const std::string dir = model_copy(tmp + "/layers", "tinystories-656k");
  json c = json::parse(test::read_file(dir + "/config.json"));
  c["num_hidden_layers"] = 1;
  std::ofstream(dir + "/config.json") << c.dump();
  expect_clean_error(run_cli("info " + quote(dir)), {"model.layers.1.", "declares 1 layers"}, "fewer layers");
}

TEST(Hostile, SizesThatWrapAreRefused) {
  const std::string tmp = test::temp_dir();
  // GGUF v3 by hand: one f32 tensor of [2^40, 2^40] (whose byte count wraps to 0), or one
  // whose offset is 2^64 - 32.
  auto write = [&](const std::string& path, std::vector<int64_t> dims, uint64_t offset) {
    std::string b = "GGUF";
    auto put = [&](auto v) { b.append(reinterpret_cast<const char*>(&v), sizeof(v)); };
    put(uint32_t{3});
    put(uint64_t{1});
    put(uint64_t{0});
    put(uint64_t{1});
    b += "t";
    put(static_cast<uint32_t>(dims.size()));
    for (int64_t d : dims) put(d);
    put(uint32_t{0});
    put(offset);
    b.resize((b.size() + 31) / 32 * 32 + 64, '\0');
    std::ofstream(path, std::ios::binary) << b;
  };
  write(tmp + "/huge.gguf", {int64_t{1} << 40, int64_t{1} << 40}, 0);
  write(tmp + "/offset.gguf", {64, 1}, ~uint64_t{31});
  for (const char* name : {"huge.gguf", "offset.gguf"}) {
    try {
      GgufFile f(tmp + "/" + name);
      ADD_FAILURE() << name << " was accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.context().file, tmp + "/" + name);
      EXPECT_EQ(e.context().tensor, "t");
      const bool huge = std::string(name) == "huge.gguf";
      const std::string expected = huge ? "size overflow" : "beyond 2^64";
      EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what();
    }
  }
  expect_clean_error(run_cli("info " + quote(tmp + "/huge.gguf")), {"huge.gguf", "size overflow"}, "huge tensor");
}

// Every top-level key of the shared configs, replaced by a value of every JSON type: the
// reader accepts it or refuses it with an Error naming config.json; nothing else escapes.
TEST(Hostile, ConfigValuesOfEveryTypeGiveNamedErrors) {
  const std::string tmp = test::temp_dir();
  const std::vector<json> values{nullptr, true, 7, -1, 3.5, "text", json::array({1, 2}), json::object({{"a", 1}}),
                                 json(uint64_t{1} << 63)};
  int refused = 0, tried = 0;
  for (const char* model : {"tinystories-656k", "shakespeare-llama-4m"}) {
    const json base = json::parse(test::read_file(test::shared_path(std::string("models/") + model + "/config.json")));
    for (const auto& [key, original] : base.items()) {
      for (const auto& v : values) {
        if (v == original) continue;
        json c = base;
        c[key] = v;
        const std::string path = tmp + "/config.json";
        std::ofstream(path) << c.dump();
        ++tried;
        try {
          read_hf_config(path);
        } catch (const Error& e) {
          ++refused;
          EXPECT_EQ(e.context().file, path) << key << " = " << v.dump();
        } catch (const std::exception& e) {
          ADD_FAILURE() << key << " = " << v.dump() << ": " << e.what();
        }
      }
    }
  }
  EXPECT_GT(tried, 300);
  EXPECT_GT(refused, 80);
}

}  // namespace
}  // namespace lowbit
