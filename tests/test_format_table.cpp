// The format table itself: every format the issue names is present with ggml's type id,
// names and ids are unique, bits per weight agree with the byte layout, lookups work.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "lowbit/error.h"
#include "lowbit/format.h"

namespace lowbit {
namespace {

TEST(FormatTable, HasEveryGgufTypeWithItsId) {
  // ggml's type ids (ggml.h), never renumbered.
  const std::map<std::string, int> ids{
      {"f32", 0},   {"f16", 1},   {"q4_0", 2},  {"q4_1", 3},  {"q5_0", 6},    {"q5_1", 7},
      {"q8_0", 8},  {"q2_k", 10}, {"q3_k", 11}, {"q4_k", 12}, {"q5_k", 13},   {"q6_k", 14},
      {"iq4_nl", 20}, {"iq4_xs", 23}, {"bf16", 30}, {"tq1_0", 34}, {"tq2_0", 35}, {"mxfp4", 39}};
  for (const auto& [name, id] : ids) {
    const Format* f = find_format(name);
    ASSERT_NE(f, nullptr) << name;
    EXPECT_EQ(f->gguf_type, id) << name;
    EXPECT_EQ(find_format_by_gguf_type(id), f) << name;
  }
}

TEST(FormatTable, HasLowbitsOwnFormats) {
  for (const char* name : {"nf4", "nf4_dq", "fp4", "fp4_dq", "fp8_e4m3", "fp8_e5m2", "mxfp4"}) {
    EXPECT_NE(find_format(name), nullptr) << name;
  }
  for (int bits : {2, 3, 4, 8}) {
    for (const char* group : {"g32", "g64", "g128", "pc"}) {
      for (const char* sym : {"sym", "asym"}) {
        const std::string name = "int" + std::to_string(bits) + "_" + group + "_" + sym;
        EXPECT_NE(find_format(name), nullptr) << name;
      }
    }
  }
}

TEST(FormatTable, NamesAndIdsAreUnique) {
  std::set<std::string_view> names;
  std::set<int> ids;
  for (const auto& f : format_table()) {
    EXPECT_TRUE(names.insert(f.name).second) << "duplicate name " << f.name;
    if (f.gguf_type != kNotGguf) {
      EXPECT_TRUE(ids.insert(f.gguf_type).second) << f.name;
    }
  }
}

TEST(FormatTable, BitsPerWeightMatchTheLayout) {
  for (const auto& f : format_table()) {
    const double from_layout = 8.0 * f.tensor_bytes(4096, 4096) / (4096.0 * 4096.0);
    EXPECT_NEAR(f.bits_per_weight, from_layout, 1e-9) << f.name;
    if (f.block_size != kPerRow && f.row_local) {
      EXPECT_DOUBLE_EQ(f.bits_per_weight, 8.0 * f.block_bytes / f.block_size) << f.name;
    }
  }
  // ggml's published sizes.
  const std::map<std::string, double> bpw{
      {"q4_0", 4.5}, {"q4_1", 5.0}, {"q5_0", 5.5}, {"q5_1", 6.0}, {"q8_0", 8.5},
      {"q2_k", 2.625}, {"q3_k", 3.4375}, {"q4_k", 4.5}, {"q5_k", 5.5}, {"q6_k", 6.5625},
      {"iq4_nl", 4.5}, {"iq4_xs", 4.25}, {"tq1_0", 1.6875}, {"tq2_0", 2.0625}, {"mxfp4", 4.25},
      {"nf4", 4.5}, {"int4_g128_sym", 4.125}, {"int4_g128_asym", 4.1875}, {"int3_g64_asym", 3.375}};
  for (const auto& [name, expected] : bpw) EXPECT_DOUBLE_EQ(format_by_name(name).bits_per_weight, expected) << name;
}

TEST(FormatTable, RowLocalFormatsHaveRowBytes) {
  for (const auto& f : format_table()) {
    if (!f.row_local) {
      EXPECT_THROW(format_row_bytes(f, 4096), Error);
      continue;
    }
    EXPECT_EQ(f.tensor_bytes(3, 4096), 3 * format_row_bytes(f, 4096)) << f.name;
  }
}

TEST(FormatTable, FitsChecksBlockSize) {
  EXPECT_TRUE(format_fits(format_by_name("q4_k"), 768));
  EXPECT_FALSE(format_fits(format_by_name("q4_k"), 172));  // stories260K's hidden size
  EXPECT_FALSE(format_fits(format_by_name("q8_0"), 172));
  EXPECT_TRUE(format_fits(format_by_name("f16"), 172));
  EXPECT_TRUE(format_fits(format_by_name("int4_pc_asym"), 172));
  EXPECT_TRUE(format_fits(format_by_name("fp8_e4m3"), 172));
}

TEST(FormatTable, UnknownNameErrorListsKnownFormats) {
  try {
    format_by_name("q4_z");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("q4_z"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("q4_k"), std::string::npos);
  }
}

}  // namespace
}  // namespace lowbit
