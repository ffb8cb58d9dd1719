// GPT-2's byte <-> character mapping (see byte_level.h): the printable bytes 33-126,
// 161-172 and 174-255 map to themselves, the other 68 to U+0100 onwards in byte order.
#include "model/byte_level.h"

#include <array>
#include <unordered_map>

#include "model/unicode_text.h"

namespace lowbit {
namespace {

const std::array<std::string, 256>& byte_table() {
  static const std::array<std::string, 256> table = [] {
    std::array<std::string, 256> t;
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
      unicode::append_utf8(t[b], printable ? static_cast<uint32_t>(b) : next++);
    }
    return t;
  }();
  return table;
}

}  // namespace

const std::string& gpt2_byte_to_unicode(uint8_t b) { return byte_table()[b]; }

std::string byte_level_encode(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) out += byte_table()[c];
  return out;
}

std::string byte_level_decode(std::string_view text) {
  static const std::unordered_map<uint32_t, char> inverse = [] {
    std::unordered_map<uint32_t, char> m;
    for (int b = 0; b < 256; ++b) {
      size_t i = 0;
      m.emplace(unicode::next_code_point(byte_table()[b], i), static_cast<char>(b));
    }
    return m;
  }();
  std::string out;
  for (size_t i = 0; i < text.size();) {
    const size_t start = i;
    const uint32_t cp = unicode::next_code_point(text, i);
    const auto it = inverse.find(cp);
    if (it != inverse.end() && !(i - start == 1 && cp >= 0x80)) out += it->second; else out.append(text, start, i - start);
  }
  return out;
}

}  // namespace lowbit
