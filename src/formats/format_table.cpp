// The format table: every storage format lowbit knows, in a fixed order (GGUF types first,
// by type id, then lowbit's own). Adding a format = one file and one line here.
#include <string>

#include "formats/formats.h"
#include "lowbit/error.h"

namespace lowbit {

std::string_view format_kind_name(FormatKind k) {
  switch (k) {
    case FormatKind::kFloat: return "float";
    case FormatKind::kLegacy: return "legacy";
    case FormatKind::kKQuant: return "k-quant";
    case FormatKind::kNonLinear: return "non-linear";
    case FormatKind::kTernary: return "ternary";
    case FormatKind::kNormalFloat: return "bnb-4bit";
    case FormatKind::kAffineInt: return "affine-int";
    case FormatKind::kFp8: return "fp8";
    case FormatKind::kRowInt8: return "row-int8";
    case FormatKind::kMicroscaling: return "microscaling";
  }
  return "?";
}

const std::vector<Format>& format_table() {
  static const std::vector<Format> table = [] {
    using namespace formats;
    std::vector<Format> t = float_formats();
    for (Format f : {q4_0_format(), q4_1_format(), q5_0_format(), q5_1_format(), q8_0_format(),
                     q2_k_format(), q3_k_format(), q4_k_format(), q5_k_format(), q6_k_format(),
                     iq4_nl_format(), iq4_xs_format(), tq1_0_format(), tq2_0_format(),
                     mxfp4_format(), bnb_int8_format()}) {
      t.push_back(f);
    }
    for (const auto& group : {normal_float_formats(), affine_int_formats(), fp8_formats()}) {
      t.insert(t.end(), group.begin(), group.end());
    }
    return t;
  }();
  return table;
}

const Format* find_format(std::string_view name) {
  for (const auto& f : format_table()) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

const Format& format_by_name(std::string_view name) {
  if (const Format* f = find_format(name)) return *f;
  std::string known;
  for (const auto& f : format_table()) {
    if (f.kind == FormatKind::kAffineInt) continue;  // a family: listed by pattern below
    known += std::string(known.empty() ? "" : ", ") + std::string(f.name);
  }
  throw Error("unknown format (known: " + known + ", int{2,3,4,8}_{g32,g64,g128,pc}_{sym,asym})",
              {.value = std::string(name)});
}

const Format* find_format_by_gguf_type(int gguf_type) {
  if (gguf_type == kNotGguf) return nullptr;
  for (const auto& f : format_table()) {
    if (f.gguf_type == gguf_type) return &f;
  }
  return nullptr;
}

}  // namespace lowbit
