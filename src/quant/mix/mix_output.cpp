// plan_for_output (mix_output.h).
#include "quant/mix/mix_output.h"

#include "io/gguf_llama.h"
#include "lowbit/error.h"
#include "lowbit/gguf.h"

namespace lowbit {

MixPlan plan_for_output(const Model& model, const QuantizeOptions& o, bool to_gguf) {
  const SensitivityReport s = o.sensitivity_data ? *o.sensitivity_data : load_sensitivity(o.sensitivity, model);
  const bool file = o.mix_target.file_bytes > 0;
  if (file && !to_gguf) throw Error("--target-size is the size of a GGUF file: write OUT.gguf, or give --target-bpw", {.file = o.output});
  const uint64_t align = file ? 32 : 1;
  auto padded = [&](uint64_t b) { return (b + align - 1) / align * align; };
  uint64_t fixed = 0;
  std::vector<GgufTensorInfo> infos;
  for (const GgufExtraTensor& e : gguf_extra_tensors(model)) {
    infos.push_back(e.info);
    if (file) fixed += padded(e.bytes.size());
  }
  for (const Weight* w : model.weights()) {
    if (w->rows == 1) fixed += padded(static_cast<uint64_t>(w->cols) * 4);  // norms stay f32
    infos.push_back({w->name, gguf_dims(*w), format_by_name("f32").gguf_type});
  }
  if (file) fixed += gguf_header_bytes(llama_gguf_metadata(model, o.name, 0), infos);  // types do not change its size
  if (o.mix_branch.matrices <= 0) return plan_mixed_precision(model, s, o.mix_target, fixed, align);
  const std::string calib = o.calib.empty() ? s.calib : o.calib;
  if (calib.empty()) throw Error("measured branching (--branch) needs the calibration text: give --calib", {.file = o.sensitivity});
  return branch_mixed_precision(model, s, o.mix_target, fixed, align, calib, o.mix_branch);
}

}  // namespace lowbit
