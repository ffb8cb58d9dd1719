// The helpers every reader and writer leans on for hostile input: overflow-checked sizes,
// JSON with a nesting limit, bounded excerpts and typed fields, the no-overwrite rule,
// stale temporaries, recipe layer selectors, and NaN/Inf scanning.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>

#include "core/json_fields.h"
#include "lowbit/atomic_file.h"
#include "lowbit/checked_size.h"
#include "lowbit/error.h"
#include "lowbit/model_io.h"
#include "lowbit/output_guard.h"
#include "lowbit/recipe.h"
#include "lowbit/weight_check.h"
#include "model/tokenizer_hf_bpe.h"
#include "test_support.h"

namespace lowbit {
namespace {

namespace fs = std::filesystem;

TEST(CheckedSize, ExactUpToTheLimitAndAnErrorBeyond) {
  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
  EXPECT_EQ(checked_mul(uint64_t{1} << 32, (uint64_t{1} << 32) - 1, "x"), (uint64_t{1} << 32) * ((uint64_t{1} << 32) - 1));
  EXPECT_EQ(checked_mul(0, kMax, "x"), 0u);
  EXPECT_EQ(checked_add(kMax - 1, 1, "x"), kMax);
  EXPECT_THROW(checked_mul(uint64_t{1} << 32, uint64_t{1} << 32, "x"), Error);
  EXPECT_THROW(checked_add(kMax, 1, "x"), Error);
  const std::vector<int64_t> ok{1 << 20, 1 << 20, 1 << 22}, wraps{int64_t{1} << 40, int64_t{1} << 40};
  EXPECT_EQ(checked_numel(ok, "x"), int64_t{1} << 62);
  EXPECT_THROW(checked_numel(wraps, "x"), Error);
  EXPECT_THROW(checked_numel(std::vector<int64_t>{4, -1}, "x"), Error);
  EXPECT_EQ(checked_numel(std::vector<int64_t>{}, "x"), 1);
  try {
    checked_mul(uint64_t{1} << 40, uint64_t{1} << 42, "tensor bytes");
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tensor bytes"), std::string::npos);
    EXPECT_EQ(e.context().value, "1099511627776 x 4398046511104");
  }
  EXPECT_EQ(describe_range(10, 5), "[10, 15)");
  EXPECT_NE(describe_range(kMax - 31, 256).find("beyond 2^64"), std::string::npos);
}

TEST(CheckedSize, FormatsRefuseTensorsWhoseBytesWrap) {
  for (const char* name : {"f32", "q4_k", "q8_0", "nf4_dq", "int4_g128_asym", "fp8_e4m3"}) {
    const Format& f = format_by_name(name);
    EXPECT_THROW(f.tensor_bytes(int64_t{1} << 40, int64_t{1} << 40), Error) << name;
    EXPECT_GT(f.tensor_bytes(4096, 4096), 0u) << name;
  }
}

TEST(JsonFields, NestingIsLimitedAndExcerptsAreBounded) {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  try {
    parse_json(deep, "deep.json");
    ADD_FAILURE() << "accepted 100,000 levels";
  } catch (const Error& e) {
    EXPECT_EQ(e.context().file, "deep.json");
    EXPECT_NE(std::string(e.what()).find("nested deeper"), std::string::npos);
  }
  const std::string ok = std::string(kMaxJsonDepth - 1, '[') + std::string(kMaxJsonDepth - 1, ']');
  EXPECT_NO_THROW(parse_json(ok, "ok.json"));
  EXPECT_THROW(parse_json("{\"a\": ", "bad.json"), Error);

  Json wide = Json::array();
  for (int i = 0; i < 10000; ++i) wide.push_back(Json::object({{"k", std::string(100, 'v')}}));
  EXPECT_LE(json_excerpt(wide).size(), 90u);
  EXPECT_EQ(json_excerpt(Json(7)), "7");
  EXPECT_EQ(json_excerpt(Json("x")), "\"x\"");
  EXPECT_EQ(json_excerpt(Json::array({1, Json::array({2, Json::array({3, Json::array({4})})})})), "[1, [2, [3, [...]]]]");
  // A string with invalid UTF-8 still prints.
  EXPECT_FALSE(json_excerpt(Json(std::string("\xff\xfe"))).empty());
}

TEST(JsonFields, TypedGettersNameTheFileAndKey) {
  const Json j = Json::parse(R"({"n": 5, "big": 18446744073709551615, "f": 1.5, "b": true, "s": "x", "z": null,
                                 "o": {"inner": "text"}, "a": [1, {"k": 2}]})");
  const JsonObject o(j, "c.json", "root");
  EXPECT_EQ(o.get_int("n"), 5);
  EXPECT_EQ(o.get_int("missing", 9), 9);
  EXPECT_EQ(o.get_number("f"), 1.5);
  EXPECT_EQ(o.get_number("n"), 5.0);
  EXPECT_TRUE(o.get_bool("b"));
  EXPECT_EQ(o.get_string("s"), "x");
  EXPECT_FALSE(o.has("z"));
  EXPECT_EQ(o.get_object("o").get_string("inner"), "text");
  auto expect_error = [](auto f, const std::string& needle) {
    try {
      f();
      ADD_FAILURE() << "no error; expected " << needle;
    } catch (const Error& e) {
      EXPECT_EQ(e.context().file, "c.json");
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_error([&] { o.get_int("s"); }, "'root.s' must be an integer, not string");
  expect_error([&] { o.get_int("f"); }, "'root.f' must be an integer");
  expect_error([&] { o.get_int("big"); }, "'root.big' is out of range");
  expect_error([&] { o.get_int("n", std::nullopt, 6, 10); }, "out of range [6, 10]");
  expect_error([&] { o.get_bool("z", false); }, "'root.z' must be true or false, not null");
  expect_error([&] { o.get_string("n"); }, "must be a string, not number");
  expect_error([&] { o.get_number("s"); }, "must be a number");
  expect_error([&] { o.get_object("s"); }, "'root.s' must be a JSON object");
  expect_error([&] { o.get_array("o"); }, "'root.o' must be an array");
  expect_error([&] { o.get_int("missing"); }, "missing field 'root.missing'");
  expect_error([&] { o.element(o.get_array("a"), "a", 0); }, "'root.a[0]' must be a JSON object");
  EXPECT_EQ(o.element(o.get_array("a"), "a", 1).get_int("k"), 2);
  expect_error([&] { o.string_element(o.get_array("a"), "a", 0); }, "'root.a[0]' must be a string");
}

TEST(OutputGuard, EverySpellingOfAnInputIsRefused) {
  const std::string dir = test::temp_dir();
  const std::string in = dir + "/in.bin";
  std::ofstream(in) << "input";
  fs::create_directories(dir + "/sub");
  fs::create_symlink(in, dir + "/link.bin");
  fs::create_hard_link(in, dir + "/hard.bin");
  for (const std::string& out : {in, dir + "/link.bin", dir + "/hard.bin", dir + "/./in.bin", dir + "/sub/../in.bin", dir}) {
    EXPECT_THROW(refuse_overwriting_inputs(out, {in}), Error) << out;
  }
  EXPECT_NO_THROW(refuse_overwriting_inputs(dir + "/new.bin", {in}));
  EXPECT_NO_THROW(refuse_overwriting_inputs(dir + "/sub", {in}));
  EXPECT_NO_THROW(refuse_overwriting_inputs(in, {"", dir + "/missing"}));
  try {
    refuse_overwriting_inputs(dir + "/hard.bin", {dir + "/other", in});
  } catch (const Error& e) {
    EXPECT_EQ(e.context().file, dir + "/hard.bin");
    EXPECT_EQ(e.context().value, in);
  }
}

TEST(AtomicFile, StaleTemporariesOfDeadWritersAreRemoved) {
  const std::string dir = test::temp_dir();
  const std::string out = dir + "/model.gguf";
  // A dead writer: a child that exits at once leaves its pid free.
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ::waitpid(child, nullptr, 0);
  const std::string dead = out + ".tmp." + std::to_string(child) + ".abc123";
  const std::string live = out + ".tmp." + std::to_string(::getppid()) + ".def456";
  const std::string other = dir + "/model.gguf.tmp.notapid";
  for (const auto& p : {dead, live, other}) std::ofstream(p) << "x";
  fs::create_directories(out + ".tmp." + std::to_string(child) + ".dir000");
  {
    AtomicFile f(out);
    f.write("data", 4);
    f.commit();
  }
  EXPECT_FALSE(fs::exists(dead));
  EXPECT_FALSE(fs::exists(out + ".tmp." + std::to_string(child) + ".dir000"));
  EXPECT_TRUE(fs::exists(live)) << "a live writer's temporary stays";
  EXPECT_TRUE(fs::exists(other));
  EXPECT_EQ(test::read_file(out), "data");
}

TEST(Recipe, LayerSelectorsAreRangeChecked) {
  const std::string dir = test::temp_dir();
  auto recipe = [&](const std::string& layers) {
    const std::string path = dir + "/r.json";
    std::ofstream(path) << R"({"base": "q4_0", "rules": [{"tensor": "ffn_*", "layers": ")" + layers + R"(", "format": "q8_0"}]})";
    return path;
  };
  for (const char* bad : {"first:1/0", "last:0/0", "first:a/b", "first:-1/1", "first:3/2", "5-2", "x", "1,,2", "-",
                          "0-99999999999999999999", "first:99999999999999999999/2", "first:1", "1-", "2097152"}) {
    try {
      load_recipe(recipe(bad));
      ADD_FAILURE() << bad << " accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.context().file, dir + "/r.json") << bad;
      EXPECT_NE(std::string(e.what()).find("rules[0].layers"), std::string::npos) << e.what();
    }
  }
  const Recipe r = load_recipe(recipe("0-1,5"));
  EXPECT_EQ(choose_format(r, "blk.1.ffn_up.weight", 1, {.n_layers = 32}, 4096).format->name, "q8_0");
  EXPECT_EQ(choose_format(r, "blk.2.ffn_up.weight", 2, {.n_layers = 32}, 4096).format->name, "q4_0");
  EXPECT_EQ(choose_format(r, "blk.5.ffn_up.weight", 5, {.n_layers = 32}, 4096).format->name, "q8_0");
  // Wrong JSON types name the recipe file and key.
  const std::string typed = dir + "/typed.json";
  std::ofstream(typed) << R"({"base": 5})";
  try {
    load_recipe(typed);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.context().file, typed);
    EXPECT_NE(std::string(e.what()).find("'base' must be a string"), std::string::npos) << e.what();
  }
}

TEST(Tokenizer, ByteTokenLookAlikesAreNotParsedAsBytes) {
  EXPECT_EQ(byte_token_value("<0x41>"), uint8_t{0x41});
  EXPECT_EQ(byte_token_value("<0xfF>"), uint8_t{0xff});
  for (const char* t : {"<0x-1>", "<0xZZ>", "<0x4>", "<0x411>", "<0x41", "0x41>", "<0X41>", ""}) {
    EXPECT_FALSE(byte_token_value(t).has_value()) << t;
  }
  // A vocabulary holding look-alikes builds and decodes them as text.
  BpeSpec spec;
  spec.tokens = {"<unk>", "\xE2\x96\x81" "a", "<0x-1>", "<0xZZ>", "<0x41>"};
  spec.pipeline = {{"model", {{"byte_fallback", true}}}, {"decoder", {{"type", "ByteFallback"}}}};
  spec.unk = 0;
  validate_bpe_spec(spec, "spec");
  const HfBpeTokenizer tok(spec, "test", "spec");
  EXPECT_EQ(tok.decode_token(1, 2), "<0x-1>");
  EXPECT_EQ(tok.decode_token(1, 3), "<0xZZ>");
  EXPECT_FALSE(tok.encode("a <0x-1> b", true).empty());
}

TEST(WeightCheck, FindsTheFirstNonFiniteValueOfEachTensor) {
  Model m = load_model(test::shared_path("models/stories260K/stories260K.bin"));
  EXPECT_TRUE(find_nonfinite_weights(m).empty());
  EXPECT_NO_THROW(require_finite_weights(m));
  // Replace two weights with owned copies holding NaN/Inf.
  auto poison = [](Weight& w, std::vector<std::pair<int64_t, float>> cells) {
    auto x = w.to_f32();
    for (auto [i, v] : cells) x[i] = v;
    auto bytes = std::make_shared<const std::vector<uint8_t>>(reinterpret_cast<const uint8_t*>(x.data()),
                                                               reinterpret_cast<const uint8_t*>(x.data() + x.size()));
    w.format = &format_by_name("f32");
    w.data = *bytes;
    w.owned = bytes;
  };
  Weight& norm = m.layers[1].ffn_norm;
  Weight& down = m.layers[0].ffn_down;
  poison(norm, {{17, NAN}});
  poison(down, {{5 * down.cols + 9, -INFINITY}, {2 * down.cols + 40, NAN}, {7 * down.cols + 1, INFINITY}});
  const auto found = find_nonfinite_weights(m);
  ASSERT_EQ(found.size(), 2u);
  EXPECT_EQ(found[0].tensor, down.name);
  EXPECT_EQ(found[0].row, 2);
  EXPECT_EQ(found[0].col, 40);
  EXPECT_EQ(found[0].count, 3);
  EXPECT_EQ(found[1].tensor, norm.name);
  EXPECT_EQ(found[1].col, 17);
  try {
    require_finite_weights(m);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.context().tensor, down.name);
    EXPECT_EQ(e.context().value, "nan");
    EXPECT_NE(std::string(e.what()).find("row 2, column 40"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace lowbit
