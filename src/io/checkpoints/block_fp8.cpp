// FP8 checkpoints with quant_method "fp8" (DeepSeek-V3, Qwen3-FP8, EXAONE: block-wise;
// some per-tensor): weight F8_E4M3 [out, in] with either weight_scale_inv
// [ceil(out/B0), ceil(in/B1)] (B = weight_block_size, default 128 x 128; despite the name
// the value is w = fp8(q) · weight_scale_inv[r/B0][c/B1]) or weight_scale per tensor/row.
// Per-row scales enter fp8_e4m3; block scales that vary along a row have no lowbit format
// yet, so those weights are kept exactly as f32.
#include "io/checkpoints/checkpoint_layout.h"
#include "lowbit/error.h"
#include "lowbit/float_convert.h"

namespace lowbit {

ImportedWeight read_block_fp8(const QuantConfig& q, const LinearTensors& t, int64_t rows, int64_t cols) {
  if (t.find("weight_scale_inv") == nullptr) return import_fp8_rows(t, "weight_scale", rows, cols);
  int64_t b0 = 128, b1 = 128;
  const JsonObject cfg(q.raw, q.file, "quantization_config");
  if (cfg.has("weight_block_size")) {
    const Json& b = cfg.get_array("weight_block_size");
    if (b.size() != 2 || !b[0].is_number_integer() || !b[1].is_number_integer() || b[0].get<int64_t>() <= 0 || b[1].get<int64_t>() <= 0) {
      cfg.fail("weight_block_size", "must be two positive integers", &b);
    }
    b0 = b[0].get<int64_t>();
    b1 = b[1].get<int64_t>();
  }
  const TensorView& w = t.get("weight", DType::F8_E4M3, {rows, cols});
  const int64_t sr = (rows + b0 - 1) / b0, sc = (cols + b1 - 1) / b1;
  const TensorView& s = t.get("weight_scale_inv");
  if (s.shape != std::vector<int64_t>{sr, sc}) {
    throw Error("weight_scale_inv must be [" + std::to_string(sr) + ", " + std::to_string(sc) + "] for " + std::to_string(b0) + " x " +
                    std::to_string(b1) + " blocks",
                {.file = t.file(), .tensor = t.name("weight_scale_inv")});
  }
  std::vector<float> scales(static_cast<size_t>(sr * sc));
  for (size_t i = 0; i < scales.size(); ++i) scales[i] = load_float(s, i, t.file());
  return f32_weight(rows, cols, [&](int64_t r, int64_t c) {
    return fp8_e4m3_to_fp32(w.data[static_cast<size_t>(r * cols + c)]) * scales[static_cast<size_t>((r / b0) * sc + c / b1)];
  });
}

}  // namespace lowbit
