// tokenizer.json pre-tokenizers: a table from the component's "type" to a builder. Each
// pre-tokenizer cuts every piece of text into smaller pieces (the BPE model never merges
// across pieces). Unknown types are refused with the file and field named.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/json_fields.h"
#include "model/unicode_regex.h"

namespace lowbit {

struct PreToken {
  std::string text;
  bool at_start = false;  // begins at offset 0 of the input text (Metaspace's "first" scheme)
};

using PreTokenizer = std::function<void(std::vector<PreToken>& pieces)>;

// The chain at root["pre_tokenizer"] (null, one component or a Sequence), in order.
std::vector<PreTokenizer> build_pre_tokenizers(const JsonObject& root);
void apply_pre_tokenizers(const std::vector<PreTokenizer>& chain, std::vector<PreToken>& pieces);

// What happens to the matched delimiters when a piece of `length` bytes is cut at
// `matches`, as tokenizers' SplitDelimiterBehavior. On "the-final--countdown" cut at '-':
// Removed [the, final, countdown]; Isolated [the, -, final, -, -, countdown];
// MergedWithPrevious [the-, final-, -, countdown]; MergedWithNext [the, -final, -,
// -countdown]; Contiguous [the, -, final, --, countdown]. With invert, the matches are
// the content and the text between them the delimiters. Returns the kept spans, none empty.
enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };
std::vector<Span> split_spans(size_t length, const std::vector<Span>& matches, SplitBehavior behavior, bool invert);

}  // namespace lowbit
