// PCRE2-backed Unicode regexes (see unicode_regex.h).
#define PCRE2_CODE_UNIT_WIDTH 8
#include "model/unicode_regex.h"

#include <pcre2.h>

#include "lowbit/error.h"

namespace lowbit {
namespace {

pcre2_code* as_code(void* p) { return static_cast<pcre2_code*>(p); }

std::string pcre2_message(int code) {
  PCRE2_UCHAR buf[256];
  pcre2_get_error_message(code, buf, sizeof(buf));
  return reinterpret_cast<const char*>(buf);
}

// Owners of PCRE2's per-search objects.
struct MatchState {
  pcre2_match_data* data = nullptr;
  pcre2_match_context* context = nullptr;
  pcre2_jit_stack* stack = nullptr;
  ~MatchState() {
    pcre2_match_data_free(data);
    pcre2_match_context_free(context);
    pcre2_jit_stack_free(stack);
  }
};

}  // namespace

UnicodeRegex::UnicodeRegex(std::string_view pattern, const std::string& file, const std::string& where) : pattern_(pattern) {
  int error = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &error, &offset, nullptr);
  if (code == nullptr) {
    throw Error("regex at '" + where + "' does not compile: " + pcre2_message(error) + " at offset " + std::to_string(offset),
                {.file = file, .value = std::string(pattern.substr(0, 200))});
  }
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // falls back to the interpreter if JIT is absent
  code_ = code;
}

UnicodeRegex::~UnicodeRegex() { pcre2_code_free(as_code(code_)); }

std::vector<Span> UnicodeRegex::find_all(std::string_view text) const {
  MatchState s;
  s.data = pcre2_match_data_create_from_pattern(as_code(code_), nullptr);
  s.context = pcre2_match_context_create(nullptr);
  s.stack = pcre2_jit_stack_create(32 * 1024, 4 * 1024 * 1024, nullptr);
  if (s.data == nullptr || s.context == nullptr) throw Error("out of memory for a regex search", {.value = pattern_.substr(0, 200)});
  if (s.stack != nullptr) pcre2_jit_stack_assign(s.context, nullptr, s.stack);
  std::vector<Span> out;
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t start = 0;
  while (start <= text.size()) {
    const int rc = pcre2_match(as_code(code_), subject, text.size(), start, 0, s.data, s.context);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) throw Error("regex search failed: " + pcre2_message(rc), {.value = pattern_.substr(0, 200)});
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(s.data);
    const size_t b = ov[0], e = ov[1];
    if (e > b) {
      out.push_back({b, e});
      start = e;
      continue;
    }
    // An empty match: step over one whole character.
    start = b + 1;
    while (start < text.size() && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) ++start;
  }
  return out;
}

std::vector<Span> find_all_literal(std::string_view text, std::string_view literal) {
  std::vector<Span> out;
  if (literal.empty()) return out;
  for (size_t at = text.find(literal); at != std::string_view::npos; at = text.find(literal, at + literal.size())) {
    out.push_back({at, at + literal.size()});
  }
  return out;
}

}  // namespace lowbit
