// GPT-2's reversible byte <-> printable code point mapping, which byte-level BPE
// vocabularies (GPT-2, Llama 3, Qwen) are written in: every byte becomes one printable
// character, so any byte string is a sequence of vocabulary symbols.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace lowbit {

// The mapped character of byte b, as UTF-8.
const std::string& gpt2_byte_to_unicode(uint8_t b);
// Maps every byte of `bytes`.
std::string byte_level_encode(std::string_view bytes);
// The inverse; characters outside the mapping are kept as they are.
std::string byte_level_decode(std::string_view text);

// GPT-2's split pattern, which ByteLevel applies when its use_regex is set.
inline constexpr std::string_view kGpt2SplitRegex =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

}  // namespace lowbit
