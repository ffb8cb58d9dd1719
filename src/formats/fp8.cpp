// fp8_e4m3 / fp8_e5m2 with one fp32 scale per row (the usual per-channel FP8 weight
// layout): row = f32 scale, then one fp8 byte per element; value = fp8(q) * scale.
#include <limits>

#include "formats/format_impl.h"
#include "formats/formats.h"

namespace lowbit::formats {
namespace {

uint64_t row_bytes(int64_t n) { return 4 + static_cast<uint64_t>(n); }

template <uint8_t (*Encode)(float), int MaxFinite>
void quantize_row(const float* x, const float*, int64_t n, uint8_t* out) {
  float amax = 0;
  for (int64_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(x[i]));
  const float scale = amax / MaxFinite;
  const float inv = scale > 0 ? 1.0f / scale : 0.0f;
  std::memcpy(out, &scale, 4);
  for (int64_t i = 0; i < n; ++i) out[4 + i] = Encode(x[i] * inv);
}

template <float (*Decode)(uint8_t)>
void dequantize_row(const uint8_t* in, int64_t n, float* out) {
  float scale;
  std::memcpy(&scale, in, 4);
  for (int64_t i = 0; i < n; ++i) out[i] = Decode(in[4 + i]) * scale;
}

template <uint8_t (*Encode)(float), float (*Decode)(uint8_t), int MaxFinite>
Format fp8_format(std::string_view name, Tolerance tol, std::string_view description) {
  constexpr QuantizeRowFn q = &quantize_row<Encode, MaxFinite>;
  constexpr DequantizeRowFn d = &dequantize_row<Decode>;
  return Format{
      .name = name,
      .gguf_type = kNotGguf,
      .kind = FormatKind::kFp8,
      .block_size = kPerRow,
      .block_bytes = 4,
      .bits_per_weight = 8.0 + 32.0 / 4096,
      .uses_importance = false,
      .max_abs_input = std::numeric_limits<float>::max(),  // fp32 scale
      .row_local = true,
      .tolerance = tol,
      .description = description,
      .tensor_bytes = &rows_times_row_bytes<row_bytes>,
      .quantize = &quantize_rows<q, row_bytes>,
      .dequantize = &dequantize_rows<d, row_bytes>,
  };
}

}  // namespace

std::vector<Format> fp8_formats() {
  return {
      fp8_format<fp32_to_fp8_e4m3, fp8_e4m3_to_fp32, 448>(
          "fp8_e4m3", {0.03, 0.04, 0.07}, "OCP FP8 E4M3 with an fp32 scale per row (amax -> 448)"),
      fp8_format<fp32_to_fp8_e5m2, fp8_e5m2_to_fp32, 57344>(
          "fp8_e5m2", {0.06, 0.07, 0.13}, "OCP FP8 E5M2 with an fp32 scale per row (amax -> 57344)"),
  };
}

}  // namespace lowbit::formats
