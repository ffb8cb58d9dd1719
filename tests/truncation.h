// Truncated-file test helpers: cut a copy of a file to many prefix lengths and expect the
// loader to refuse each with an Error naming the file.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "lowbit/error.h"

namespace lowbit::test {

inline std::vector<char> read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline void write_all(const std::string& path, const std::vector<char>& bytes, size_t n) {
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<std::streamsize>(n));
}

// Lengths to test: every prefix when `every` covers the whole file, otherwise every prefix
// up to `every` bytes (headers, where the parsing decisions are), then one every 4093
// bytes and the last 64 (the data, where only sizes are compared).
inline std::vector<size_t> prefix_lengths(size_t size, size_t every) {
  std::vector<size_t> lengths;
  for (size_t n = 0; n < size; ++n) {
    if (n < every || n % 4093 == 0 || n + 64 >= size) lengths.push_back(n);
  }
  return lengths;
}

// Truncates a copy of `source` (at `path`) to each length, longest first, and expects
// `load` to throw an Error naming `path`.
inline void expect_prefixes_rejected(const std::string& source, const std::string& path, size_t every,
                              const std::function<void()>& load) {
  const auto bytes = read_all(source);
  ASSERT_FALSE(bytes.empty()) << source;
  write_all(path, bytes, bytes.size());
  // A cut that removes only trailing whitespace leaves the same content: not a truncation.
  size_t content_end = bytes.size();
  while (content_end > 0 && std::isspace(static_cast<unsigned char>(bytes[content_end - 1]))) --content_end;
  auto lengths = prefix_lengths(content_end, every);
  std::reverse(lengths.begin(), lengths.end());
  int failures = 0;
  for (size_t n : lengths) {
    ASSERT_EQ(::truncate(path.c_str(), static_cast<off_t>(n)), 0);
    try {
      load();
      if (failures++ < 3) ADD_FAILURE() << "prefix of " << n << " bytes of " << source << " loaded";
    } catch (const Error& e) {
      if (std::string(e.what()).find(path) == std::string::npos && failures++ < 3) {
        ADD_FAILURE() << "prefix " << n << ": message does not name the file: " << e.what();
      }
    }
  }
  EXPECT_EQ(failures, 0);
  ::testing::Test::RecordProperty("prefixes_tested", static_cast<int>(lengths.size()));
}

}  // namespace lowbit::test
