// f32, f16, bf16 (ggml types 0, 1, 30): one element per block, no scale. f16 and bf16 round
// to nearest even (ggml's conversion).
#include <limits>

#include "formats/format_impl.h"
#include "formats/formats.h"

namespace lowbit::formats {
namespace {

void quantize_f32(const float* x, const float*, int64_t n, uint8_t* out) { std::memcpy(out, x, 4 * n); }
void dequantize_f32(const uint8_t* in, int64_t n, float* out) { std::memcpy(out, in, 4 * n); }

template <uint16_t (*Encode)(float)>
void quantize_16(const float* x, const float*, int64_t n, uint8_t* out) {
  for (int64_t i = 0; i < n; ++i) {
    const uint16_t h = Encode(x[i]);
    std::memcpy(out + 2 * i, &h, 2);
  }
}

template <float (*Decode)(uint16_t)>
void dequantize_16(const uint8_t* in, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, in + 2 * i, 2);
    out[i] = Decode(h);
  }
}

}  // namespace

std::vector<Format> float_formats() {
  std::vector<Format> formats{
      block_format<float, 1, quantize_f32, dequantize_f32>(
          "f32", 0, FormatKind::kFloat, false, {0, 0, 0}, "IEEE binary32, unquantized"),
      block_format<uint16_t, 1, quantize_16<fp32_to_fp16>, fp16_row_to_fp32>(
          "f16", 1, FormatKind::kFloat, false, {5e-4, 5e-4, 1e-3}, "IEEE binary16"),
      block_format<uint16_t, 1, quantize_16<fp32_to_bf16>, dequantize_16<bf16_to_fp32>>(
          "bf16", 30, FormatKind::kFloat, false, {4e-3, 4e-3, 4e-3}, "bfloat16"),
  };
  formats[0].max_abs_input = std::numeric_limits<float>::max();
  formats[2].max_abs_input = bf16_to_fp32(0x7F7F);  // the largest finite bf16
  return formats;
}

}  // namespace lowbit::formats
