// safetensors reader and writer: round trips of every dtype and metadata, the shared
// oracle files, and rejection (with a message naming file and tensor) of every malformed
// header and of every truncated prefix of a valid file. Also AtomicFile's guarantees.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "lowbit/atomic_file.h"
#include "lowbit/error.h"
#include "lowbit/safetensors.h"
#include "test_support.h"

namespace lowbit {
namespace {

namespace fs = std::filesystem;

void write_raw(const std::string& path, const std::string& header, const std::vector<uint8_t>& data) {
  std::ofstream out(path, std::ios::binary);
  uint64_t n = header.size();
  out.write(reinterpret_cast<const char*>(&n), 8);
  out << header;
  out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
}

// Expects opening `path` to throw an Error whose text names the file and contains `needle`.
void expect_rejected(const std::string& path, const std::string& needle) {
  try {
    SafetensorsFile f(path);
    ADD_FAILURE() << "accepted a malformed file; expected: " << needle;
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(path), std::string::npos) << what;
    EXPECT_NE(what.find(needle), std::string::npos) << "message: " << what;
    EXPECT_LT(what.size(), 1000u) << "a bounded excerpt, not the whole value";
  }
}

TEST(Safetensors, RoundTripsEveryDtypeAndMetadata) {
  const auto dir = test::temp_dir();
  const std::string path = dir + "/all.safetensors";
  std::vector<std::vector<uint8_t>> buffers;
  std::vector<TensorToWrite> tensors;
  for (DType t : {DType::F64, DType::F32, DType::F16, DType::BF16, DType::F8_E4M3, DType::F8_E5M2,
                  DType::I64, DType::I32, DType::I16, DType::I8, DType::U64, DType::U32,
                  DType::U16, DType::U8, DType::BOOL}) {
    const std::vector<int64_t> shape{3, 5};
    std::vector<uint8_t> bytes(15 * dtype_size(t));
    for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(i * 7 + 1);
    if (t == DType::BOOL) for (auto& b : bytes) b &= 1;
    buffers.push_back(bytes);
    tensors.push_back({"t_" + std::string(dtype_name(t)), t, shape, buffers.back()});
  }
  for (size_t i = 0; i < tensors.size(); ++i) tensors[i].data = buffers[i];
  write_safetensors(path, tensors, {{"format", "pt"}, {"note", "lowbit test"}});

  const SafetensorsFile f(path);
  ASSERT_EQ(f.tensors().size(), tensors.size());
  EXPECT_EQ(f.metadata().at("note"), "lowbit test");
  for (const auto& t : tensors) {
    const auto& r = f.tensor(t.name);
    EXPECT_EQ(r.dtype, t.dtype);
    EXPECT_EQ(r.shape, t.shape);
    EXPECT_TRUE(std::equal(r.data.begin(), r.data.end(), t.data.begin(), t.data.end())) << t.name;
  }
  // The header is padded so the data starts 8-byte aligned.
  uint64_t header_len;
  std::ifstream in(path, std::ios::binary);
  in.read(reinterpret_cast<char*>(&header_len), 8);
  EXPECT_EQ(header_len % 8, 0u);
}

TEST(Safetensors, ConvertsFloatDtypesToF32) {
  const auto dir = test::temp_dir();
  const std::string path = dir + "/f.safetensors";
  const uint16_t half[3] = {0x3C00, 0xC000, 0x3800};    // 1, -2, 0.5
  const uint16_t bf[3] = {0x3F80, 0xC000, 0x3F00};      // 1, -2, 0.5
  const uint8_t e4m3[3] = {0x38, 0xC0, 0x30};           // 1, -2, 0.5
  auto span_of = [](const void* p, size_t n) { return std::span<const uint8_t>(static_cast<const uint8_t*>(p), n); };
  write_safetensors(path, {{"h", DType::F16, {3}, span_of(half, 6)},
                           {"b", DType::BF16, {3}, span_of(bf, 6)},
                           {"e", DType::F8_E4M3, {3}, span_of(e4m3, 3)}});
  const SafetensorsFile f(path);
  for (const char* name : {"h", "b", "e"}) {
    EXPECT_EQ(f.to_f32(f.tensor(name)), (std::vector<float>{1.0f, -2.0f, 0.5f})) << name;
  }
}

TEST(Safetensors, ReadsTheSharedOracleFile) {
  const SafetensorsFile f(test::shared_path("testdata/ggml/quant-vectors.safetensors"));
  const auto& x = f.tensor("x");
  EXPECT_EQ(x.dtype, DType::F32);
  EXPECT_EQ(x.shape, (std::vector<int64_t>{8, 512}));
  EXPECT_EQ(f.tensor("q4_K.q").dtype, DType::U8);
  EXPECT_TRUE(f.metadata().count("gguf_type_ids"));
  EXPECT_THROW(f.tensor("no_such_tensor"), Error);
  EXPECT_THROW(f.to_f32(f.tensor("q4_K.q")), Error);
}

TEST(Safetensors, RejectsMalformedHeaders) {
  const auto dir = test::temp_dir();
  const std::vector<uint8_t> data(16, 0);
  struct Case {
    const char* name;
    std::string header;
    std::string needle;
  } cases[] = {
      {"bad_json", "{\"a\": ", "not valid JSON"},
      {"not_object", "[1, 2]", "not a JSON object"},
      {"duplicate", R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})", "duplicate"},
      {"unknown_dtype", R"({"a":{"dtype":"F12","shape":[2],"data_offsets":[0,8]}})", "unknown dtype"},
      {"negative_dim", R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", "non-negative"},
      {"size_mismatch", R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", "does not match"},
      {"out_of_range", R"({"a":{"dtype":"F32","shape":[6],"data_offsets":[0,24]}})", "out of range"},
      {"reversed", R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", "out of range"},
      {"overlap", R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})", "overlaps"},
      {"no_offsets", R"({"a":{"dtype":"F32","shape":[2]}})", "data_offsets"},
      {"bad_metadata", R"({"__metadata__":{"k":1}})", "__metadata__"},
      {"overflow", R"({"a":{"dtype":"F64","shape":[4294967296,4294967296,16],"data_offsets":[0,8]}})", "size overflow"},
      {"deep", std::string(200, '[') + std::string(200, ']'), "nested deeper"},
      {"long_value", R"({"a":{"dtype":")" + std::string(100000, 'x') + R"(","shape":[2],"data_offsets":[0,8]}})", "unknown dtype"},
  };
  for (const auto& c : cases) {
    const std::string path = dir + "/" + c.name + ".safetensors";
    write_raw(path, c.header, data);
    SCOPED_TRACE(c.name);
    expect_rejected(path, c.needle);
  }
  // A tensor error names the tensor too.
  try {
    SafetensorsFile f(dir + "/size_mismatch.safetensors");
  } catch (const Error& e) {
    EXPECT_EQ(e.context().tensor, "a");
  }
}

TEST(Safetensors, RejectsBadLengths) {
  const auto dir = test::temp_dir();
  const std::string tiny = dir + "/tiny.safetensors";
  std::ofstream(tiny, std::ios::binary) << "abc";
  expect_rejected(tiny, "too short");

  const std::string huge = dir + "/huge.safetensors";
  {
    std::ofstream out(huge, std::ios::binary);
    const uint64_t n = 200ull * 1000 * 1000;
    out.write(reinterpret_cast<const char*>(&n), 8);
    out << "{}";
  }
  expect_rejected(huge, "100 MB");

  const std::string longer = dir + "/longer.safetensors";
  {
    std::ofstream out(longer, std::ios::binary);
    const uint64_t n = 1000;
    out.write(reinterpret_cast<const char*>(&n), 8);
    out << "{}";
  }
  expect_rejected(longer, "exceeds the file size");
  expect_rejected(dir + "/missing.safetensors", "cannot open");
}

TEST(Safetensors, EveryTruncatedPrefixIsRejectedCleanly) {
  const auto dir = test::temp_dir();
  const std::string full = dir + "/full.safetensors";
  const std::vector<float> values{1, 2, 3, 4, 5, 6};
  write_safetensors(full, {{"w", DType::F32, {2, 3},
                            std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(values.data()), 24)}});
  std::ifstream in(full, std::ios::binary);
  const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string cut = dir + "/cut.safetensors";
  for (size_t len = 0; len < bytes.size(); ++len) {
    std::ofstream(cut, std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<std::streamsize>(len));
    EXPECT_THROW(SafetensorsFile f(cut), Error) << "prefix of " << len << " bytes";
  }
  EXPECT_NO_THROW(SafetensorsFile f(full));
}

TEST(Safetensors, WriterRejectsInconsistentTensorsAndLeavesNoFile) {
  const auto dir = test::temp_dir();
  const std::string path = dir + "/bad.safetensors";
  const std::vector<uint8_t> bytes(10);
  EXPECT_THROW(write_safetensors(path, {{"w", DType::F32, {3}, bytes}}), Error);
  EXPECT_THROW(write_safetensors(path, {{"w", DType::U8, {10}, bytes}, {"w", DType::U8, {10}, bytes}}), Error);
  EXPECT_FALSE(fs::exists(path));
  EXPECT_TRUE(fs::is_empty(dir));
}

TEST(AtomicFile, UncommittedWritesLeaveNothing) {
  const auto dir = test::temp_dir();
  const std::string path = dir + "/model.bin";
  {
    AtomicFile f(path);
    f.write_zeros(1000);
    EXPECT_FALSE(fs::exists(path));
  }
  EXPECT_TRUE(fs::is_empty(dir)) << "temporary file left behind";
  {
    AtomicFile f(path);
    f.write("abc", 3);
    f.commit();
  }
  EXPECT_EQ(fs::file_size(path), 3u);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);
}

TEST(AtomicFile, CommitReplacesAnExistingFileWhole) {
  const auto dir = test::temp_dir();
  const std::string path = dir + "/model.bin";
  std::ofstream(path) << "old contents that are longer";
  {
    AtomicFile f(path);
    f.write("new", 3);
    // before commit the old file is still intact
    EXPECT_EQ(fs::file_size(path), 28u);
    f.commit();
  }
  EXPECT_EQ(fs::file_size(path), 3u);
}

}  // namespace
}  // namespace lowbit
