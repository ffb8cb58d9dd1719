// TrainModel::export_to and fake_quant_for (lowbit/train.h): the trained tensors back into
// a Model, each fake-quantized linear in the bytes of its format, so the file holds exactly
// what the last forward computed.
#include <algorithm>

#include "formats/part_packing.h"
#include "io/checkpoints/checkpoint_layout.h"
#include "lowbit/error.h"
#include "lowbit/float_convert.h"
#include "lowbit/train.h"
#include "train/train_model_parts.h"

namespace lowbit {

FakeQuantOptions fake_quant_for(const Format& f) {
  if (const auto shape = int_format_shape(f)) {
    return {.bits = shape->bits, .group = shape->group, .sym = shape->sym, .fp16_scales = true};
  }
  if (f.kind == FormatKind::kFloat) throw Error("fake quantization needs a quantized format, not a float one", {.value = std::string(f.name)});
  return {.format = &f};
}

namespace {

// The intN table format of this grid: g{group} when one exists, else one group per row.
const Format& int_format_of(const FakeQuantOptions& fq, int64_t cols, const std::string& tensor) {
  for (const Format& f : format_table()) {
    const auto shape = int_format_shape(f);
    if (!shape || shape->bits != fq.bits || shape->sym != fq.sym || !format_fits(f, cols)) continue;
    if (shape->group == fq.group || (shape->group == 0 && fq.group == cols)) return f;
  }
  throw Error("no intN format holds this fake-quantization grid", {.tensor = tensor,
              .value = std::to_string(fq.bits) + " bits, groups of " + std::to_string(fq.group)});
}

Weight owned_weight(const std::string& name, const Format& f, int64_t rows, int64_t cols, std::vector<uint8_t> bytes) {
  auto owned = std::make_shared<const std::vector<uint8_t>>(std::move(bytes));
  return Weight{name, &f, rows, cols, *owned, owned};
}

}  // namespace

void TrainModel::export_to(Model& m) const {
  std::vector<Weight*> targets{&m.token_embd};
  for (LayerWeights& l : m.layers) {
    for (Weight* w : {&l.attn_norm, &l.attn_q, &l.attn_k, &l.attn_v, &l.attn_output, &l.ffn_norm, &l.ffn_gate, &l.ffn_up, &l.ffn_down}) targets.push_back(w);
  }
  targets.push_back(&m.output_norm);
  if (!m.config.tied_output) targets.push_back(&m.output);
  std::vector<const LinearExtras*> extras_of(targets.size(), nullptr);
  for (const LinearExtras& e : extras_) extras_of[e.weight] = &e;
  m.config.rope_style = RopeStyle::kRotateHalf;  // q/k rows as the training engine holds them; writers reorder
  const Format& f32 = format_by_name("f32");
  for (size_t k = 0; k < targets.size(); ++k) {
    const TrainTensor& t = params_[k];
    Weight& out = *targets[k];
    const LinearExtras* e = extras_of[k];
    Weight w;
    if (e != nullptr && e->frozen) {
      w = *e->frozen;
    } else if (e != nullptr && e->fq.format != nullptr) {
      w = owned_weight(out.name, *e->fq.format, t.rows, t.cols, quantize_tensor(*e->fq.format, t.value, t.rows, t.cols));
    } else if (e != nullptr && e->scale >= 0) {
      const Format& f = int_format_of(e->fq, t.cols, t.name);
      const int64_t group = e->fq.group, groups = t.cols / group;
      const uint64_t row_bytes = format_row_bytes(f, t.cols), group_bytes = row_bytes / groups;
      std::vector<uint8_t> bytes(f.tensor_bytes(t.rows, t.cols)), codes(static_cast<size_t>(group));
      for (int64_t r = 0; r < t.rows; ++r) {
        for (int64_t g = 0; g < groups; ++g) {
          for (int64_t c = 0; c < group; ++c) codes[c] = static_cast<uint8_t>(code(*e, r, g * group + c));
          const int64_t at = r * groups + g;
          formats::pack_affine_group(e->fq.bits, e->fq.sym, fp32_to_fp16(std::max(params_[e->scale].value[at], kMinFp16Scale)),
                                     static_cast<int>(zero_of(*e, params_[e->zero].value[at])), codes.data(), group,
                                     bytes.data() + r * row_bytes + g * group_bytes);
        }
      }
      w = owned_weight(out.name, f, t.rows, t.cols, std::move(bytes));
    } else {
      std::vector<uint8_t> bytes(t.value.size() * sizeof(float));
      std::copy_n(reinterpret_cast<const uint8_t*>(t.value.data()), bytes.size(), bytes.data());
      w = owned_weight(out.name, f32, t.rows, t.cols, std::move(bytes));
    }
    w.name = out.name;
    w.input_scale = out.input_scale;
    out = std::move(w);
  }
}

}  // namespace lowbit
