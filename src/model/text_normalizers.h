// tokenizer.json normalizers: a table from the component's "type" to a builder, and the
// chain a tokenizer applies to each run of text between added tokens. Unknown types are
// refused with the file and field named.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/json_fields.h"

namespace lowbit {

using TextNormalizer = std::function<void(std::string& text)>;

// The chain at root["normalizer"] (null, one component or a Sequence), in order.
std::vector<TextNormalizer> build_normalizers(const JsonObject& root);
void apply_normalizers(const std::vector<TextNormalizer>& chain, std::string& text);

}  // namespace lowbit
