// tokenizer.json pre-tokenizers (see pre_tokenizers.h). Each entry follows the component of
// Hugging Face tokenizers with the same name:
//   Split: a string or regex pattern, a delimiter behaviour, invert;
//   ByteLevel: optional prefix space, GPT-2's regex when use_regex, then the byte mapping;
//   Metaspace: spaces to the replacement, prepend_scheme always/first/never, split;
//   Digits (individual or runs), Punctuation (a behaviour), Whitespace (\w+|[^\w\s]+),
//   WhitespaceSplit, and BertPreTokenizer (whitespace, then punctuation isolated).
#include "model/pre_tokenizers.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <string_view>

#include "lowbit/error.h"
#include "model/byte_level.h"
#include "model/tokenizer_json_parts.h"
#include "model/unicode_text.h"

namespace lowbit {

std::vector<Span> split_spans(size_t length, const std::vector<Span>& matches, SplitBehavior behavior, bool invert) {
  struct Part {
    Span span;
    bool match;
  };
  std::vector<Part> parts;  // the whole piece, in order
  size_t at = 0;
  for (const Span& m : matches) {
    if (m.begin > at) parts.push_back({{at, m.begin}, invert});
    if (m.end > m.begin) parts.push_back({m, !invert});
    at = m.end;
  }
  if (at < length) parts.push_back({{at, length}, invert});

  std::vector<Span> out;
  bool previous_match = false;
  switch (behavior) {
    case SplitBehavior::kRemoved:
      for (const Part& p : parts) {
        if (!p.match) out.push_back(p.span);
      }
      break;
    case SplitBehavior::kIsolated:
      for (const Part& p : parts) out.push_back(p.span);
      break;
    case SplitBehavior::kContiguous:
      for (const Part& p : parts) {
        if (p.match && previous_match && !out.empty()) out.back().end = p.span.end; else out.push_back(p.span);
        previous_match = p.match;
      }
      break;
    case SplitBehavior::kMergedWithPrevious:
      for (const Part& p : parts) {
        if (p.match && !previous_match && !out.empty()) out.back().end = p.span.end; else out.push_back(p.span);
        previous_match = p.match;
      }
      break;
    case SplitBehavior::kMergedWithNext:
      for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
        if (it->match && !previous_match && !out.empty()) out.back().begin = it->span.begin; else out.push_back(it->span);
        previous_match = it->match;
      }
      std::reverse(out.begin(), out.end());
      break;
  }
  return out;
}

namespace {

using Matcher = std::function<std::vector<Span>(std::string_view)>;

// Cuts every piece at the matcher's spans.
PreTokenizer splitter(Matcher find, SplitBehavior behavior, bool invert) {
  return [find = std::move(find), behavior, invert](std::vector<PreToken>& pieces) {
    std::vector<PreToken> out;
    out.reserve(pieces.size());
    for (PreToken& p : pieces) {
      for (const Span& s : split_spans(p.text.size(), find(p.text), behavior, invert)) {
        out.push_back({p.text.substr(s.begin, s.end - s.begin), p.at_start && s.begin == 0});
      }
    }
    pieces = std::move(out);
  };
}

// One span per character for which `pred` holds.
template <typename Pred>
Matcher char_matcher(Pred pred) {
  return [pred](std::string_view text) {
    std::vector<Span> out;
    for (size_t i = 0; i < text.size();) {
      const size_t s = i;
      if (pred(unicode::next_code_point(text, i))) out.push_back({s, i});
    }
    return out;
  };
}

Matcher regex_matcher(std::string_view pattern, const JsonObject& c, const char* key) {
  auto re = std::make_shared<const UnicodeRegex>(pattern, c.file(), c.field(key));
  return [re](std::string_view text) { return re->find_all(text); };
}

SplitBehavior read_behavior(const JsonObject& c, std::optional<std::string> fallback) {
  static constexpr std::pair<std::string_view, SplitBehavior> kNames[] = {
      {"Removed", SplitBehavior::kRemoved},
      {"Isolated", SplitBehavior::kIsolated},
      {"MergedWithPrevious", SplitBehavior::kMergedWithPrevious},
      {"MergedWithNext", SplitBehavior::kMergedWithNext},
      {"Contiguous", SplitBehavior::kContiguous},
  };
  const std::string name = c.get_string("behavior", fallback);
  for (const auto& [n, b] : kNames) {
    if (name == n) return b;
  }
  c.fail("behavior", "is not Removed, Isolated, MergedWithPrevious, MergedWithNext or Contiguous", c.find("behavior"));
}

bool is_bert_punctuation(uint32_t cp) {
  const bool ascii_punct = (cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) || (cp >= 123 && cp <= 126);
  return ascii_punct || unicode::is_punctuation(cp);
}

PreTokenizer split(const JsonObject& c) {
  const PatternSpec p = read_pattern(c);
  Matcher find = p.regex ? regex_matcher(p.text, c, "pattern")
                         : Matcher([literal = p.text](std::string_view t) { return find_all_literal(t, literal); });
  return splitter(std::move(find), read_behavior(c, std::nullopt), c.get_bool("invert", false));
}

PreTokenizer byte_level(const JsonObject& c) {
  const bool prefix = c.get_bool("add_prefix_space", true);
  PreTokenizer regex;
  if (c.get_bool("use_regex", true)) regex = splitter(regex_matcher(kGpt2SplitRegex, c, "use_regex"), SplitBehavior::kIsolated, false);
  return [prefix, regex](std::vector<PreToken>& pieces) {
    if (prefix) {
      for (PreToken& p : pieces) {
        if (!p.text.starts_with(' ')) p.text.insert(0, 1, ' ');
      }
    }
    if (regex) regex(pieces);
    for (PreToken& p : pieces) p.text = byte_level_encode(p.text);
  };
}

PreTokenizer metaspace(const JsonObject& c) {
  const std::string replacement = c.get_string("replacement", "\xE2\x96\x81");
  const std::string scheme = c.get_string("prepend_scheme", c.get_bool("add_prefix_space", true) ? "always" : "never");
  if (scheme != "always" && scheme != "first" && scheme != "never") c.fail("prepend_scheme", "is not always, first or never", c.find("prepend_scheme"));
  PreTokenizer cut;
  if (c.get_bool("split", true)) {
    cut = splitter([replacement](std::string_view t) { return find_all_literal(t, replacement); }, SplitBehavior::kMergedWithNext, false);
  }
  return [replacement, scheme, cut](std::vector<PreToken>& pieces) {
    for (PreToken& p : pieces) {
      std::string out;
      for (char ch : p.text) {
        if (ch == ' ') out += replacement; else out += ch;
      }
      const bool prepend = scheme == "always" || (scheme == "first" && p.at_start);
      if (prepend && !out.starts_with(replacement)) out.insert(0, replacement);
      p.text = std::move(out);
    }
    if (cut) cut(pieces);
  };
}

using Builder = PreTokenizer (*)(const JsonObject& c);

struct Entry {
  const char* type;
  Builder build;
};

constexpr Entry kPreTokenizers[] = {
    {"Split", &split},
    {"ByteLevel", &byte_level},
    {"Metaspace", &metaspace},
    {"Digits",
     [](const JsonObject& c) {
       return splitter(char_matcher(&unicode::is_numeric),
                       c.get_bool("individual_digits", false) ? SplitBehavior::kIsolated : SplitBehavior::kContiguous, false);
     }},
    {"Punctuation", [](const JsonObject& c) { return splitter(char_matcher(&is_bert_punctuation), read_behavior(c, "Isolated"), false); }},
    {"Whitespace", [](const JsonObject& c) { return splitter(regex_matcher(R"(\w+|[^\w\s]+)", c, "type"), SplitBehavior::kRemoved, true); }},
    {"WhitespaceSplit", [](const JsonObject&) { return splitter(char_matcher(&unicode::is_whitespace), SplitBehavior::kRemoved, false); }},
    {"BertPreTokenizer",
     [](const JsonObject&) -> PreTokenizer {
       PreTokenizer ws = splitter(char_matcher(&unicode::is_whitespace), SplitBehavior::kRemoved, false);
       PreTokenizer punct = splitter(char_matcher(&is_bert_punctuation), SplitBehavior::kIsolated, false);
       return [ws, punct](std::vector<PreToken>& pieces) {
         ws(pieces);
         punct(pieces);
       };
     }},
};

}  // namespace

std::vector<PreTokenizer> build_pre_tokenizers(const JsonObject& root) {
  return build_chain<PreTokenizer>(root, "pre_tokenizer", "pretokenizers", kPreTokenizers);
}

void apply_pre_tokenizers(const std::vector<PreTokenizer>& chain, std::vector<PreToken>& pieces) {
  for (const PreTokenizer& p : chain) p(pieces);
}

}  // namespace lowbit
