// tokenizer.json normalizers (see text_normalizers.h). Each entry follows the component of
// Hugging Face tokenizers with the same name: NFC/NFD/NFKC/NFKD, Lowercase, StripAccents,
// Strip, Prepend (only to non-empty text) and Replace (a string or a regex, every match).
#include "model/text_normalizers.h"

#include <memory>
#include <string_view>

#include "lowbit/error.h"
#include "model/tokenizer_json_parts.h"
#include "model/unicode_regex.h"
#include "model/unicode_text.h"

namespace lowbit {
namespace {

using Builder = TextNormalizer (*)(const JsonObject& c);

TextNormalizer form(unicode::Form f) {
  return [f](std::string& t) { t = unicode::normalize(t, f); };
}

TextNormalizer strip(const JsonObject& c) {
  const bool left = c.get_bool("strip_left", true), right = c.get_bool("strip_right", true);
  return [left, right](std::string& t) {
    size_t b = 0, e = t.size();
    auto last_start = [&](size_t end) {  // start of the character ending at `end`
      size_t s = end - 1;
      while (s > 0 && (static_cast<unsigned char>(t[s]) & 0xC0) == 0x80) --s;
      return s;
    };
    while (left && b < e) {
      size_t next = b;
      if (!unicode::is_whitespace(unicode::next_code_point(t, next))) break;
      b = next;
    }
    while (right && e > b) {
      size_t s = last_start(e), i = s;
      if (!unicode::is_whitespace(unicode::next_code_point(t, i))) break;
      e = s;
    }
    t = t.substr(b, e - b);
  };
}

TextNormalizer strip_accents(const JsonObject&) {
  return [](std::string& t) {
    std::string out;
    for (size_t i = 0; i < t.size();) {
      const size_t s = i;
      if (!unicode::is_mark_nonspacing(unicode::next_code_point(t, i))) out.append(t, s, i - s);
    }
    t = std::move(out);
  };
}

TextNormalizer prepend(const JsonObject& c) {
  const std::string p = c.get_string("prepend");
  return [p](std::string& t) {
    if (!t.empty()) t.insert(0, p);
  };
}

TextNormalizer replace(const JsonObject& c) {
  const PatternSpec pattern = read_pattern(c);
  const std::string content = c.get_string("content");
  std::shared_ptr<const UnicodeRegex> re;
  if (pattern.regex) re = std::make_shared<const UnicodeRegex>(pattern.text, c.file(), c.field("pattern"));
  const std::string literal = pattern.text;
  return [re, literal, content](std::string& t) {
    const std::vector<Span> spans = re ? re->find_all(t) : find_all_literal(t, literal);
    if (spans.empty()) return;
    std::string out;
    size_t at = 0;
    for (const Span& s : spans) {
      out.append(t, at, s.begin - at).append(content);
      at = s.end;
    }
    out.append(t, at, std::string::npos);
    t = std::move(out);
  };
}

struct Entry {
  const char* type;
  Builder build;
};

constexpr Entry kNormalizers[] = {
    {"NFC", [](const JsonObject&) { return form(unicode::Form::kNfc); }},
    {"NFD", [](const JsonObject&) { return form(unicode::Form::kNfd); }},
    {"NFKC", [](const JsonObject&) { return form(unicode::Form::kNfkc); }},
    {"NFKD", [](const JsonObject&) { return form(unicode::Form::kNfkd); }},
    {"Lowercase", [](const JsonObject&) -> TextNormalizer { return [](std::string& t) { t = unicode::lowercase(t); }; }},
    {"StripAccents", &strip_accents},
    {"Strip", &strip},
    {"Prepend", &prepend},
    {"Replace", &replace},
};

}  // namespace

std::vector<TextNormalizer> build_normalizers(const JsonObject& root) {
  return build_chain<TextNormalizer>(root, "normalizer", "normalizers", kNormalizers);
}

void apply_normalizers(const std::vector<TextNormalizer>& chain, std::string& text) {
  for (const TextNormalizer& n : chain) n(text);
}

}  // namespace lowbit
