// Unicode helpers for the tokenizer pipelines, on UTF-8 text, backed by utf8proc: code point
// decoding, the character classes tokenizers test (whitespace, numeric, punctuation,
// alphanumeric), normalization forms and lowercasing. No Unicode tables live in lowbit.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace lowbit::unicode {

// The code point starting at s[i], advancing i past it. An invalid or truncated sequence
// yields its first byte as a code point of its own (i advances by one).
uint32_t next_code_point(std::string_view s, size_t& i);
void append_utf8(std::string& out, uint32_t cp);

bool is_whitespace(uint32_t cp);    // the White_Space property (as Rust's char::is_whitespace)
bool is_numeric(uint32_t cp);       // general categories Nd, Nl, No
bool is_punctuation(uint32_t cp);   // general categories P*
bool is_alphanumeric(uint32_t cp);  // letters (L*) and numbers (N*)
bool is_mark_nonspacing(uint32_t cp);  // Mn, what StripAccents removes after NFD

enum class Form { kNfc, kNfd, kNfkc, kNfkd };
// The text in a normalization form. Invalid UTF-8 is returned unchanged.
std::string normalize(std::string_view text, Form form);
// Full Unicode lowercase mapping, code point by code point.
std::string lowercase(std::string_view text);

}  // namespace lowbit::unicode
