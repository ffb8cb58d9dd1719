// bnb_int8: bitsandbytes' LLM.int8() weight format (Int8Params, vector-wise): per row an
// fp32 absmax (bitsandbytes' SCB) and one int8 code per element.
//   row = f32 SCB, then cols int8 codes;  q = round(x · 127 / SCB);  value = (q · SCB) · (1/127)
// in that order, as int8_vectorwise_quant / int8_vectorwise_dequant compute them, so a
// checkpoint's weight and SCB tensors enter and leave lowbit unchanged
// (tests/test_checkpoint_oracles.cpp).
#include <cmath>
#include <limits>

#include "formats/format_impl.h"
#include "formats/formats.h"

namespace lowbit::formats {
namespace {

uint64_t row_bytes(int64_t n) { return 4 + static_cast<uint64_t>(n); }

void quantize_row(const float* x, const float*, int64_t n, uint8_t* out) {
  float scb = 0;
  for (int64_t i = 0; i < n; ++i) scb = std::max(scb, std::fabs(x[i]));
  std::memcpy(out, &scb, 4);
  for (int64_t i = 0; i < n; ++i) {
    const float q = scb > 0 ? std::nearbyint(x[i] * 127.0f / scb) : 0.0f;
    out[4 + i] = static_cast<uint8_t>(static_cast<int8_t>(std::clamp(q, -127.0f, 127.0f)));
  }
}

void dequantize_row(const uint8_t* in, int64_t n, float* out) {
  float scb;
  std::memcpy(&scb, in, 4);
  for (int64_t i = 0; i < n; ++i) out[i] = (static_cast<float>(static_cast<int8_t>(in[4 + i])) * scb) * (1.0f / 127.0f);
}

}  // namespace

Format bnb_int8_format() {
  return Format{
      .name = "bnb_int8",
      .gguf_type = kNotGguf,
      .kind = FormatKind::kRowInt8,
      .block_size = kPerRow,
      .block_bytes = 4,
      .bits_per_weight = 8.0 + 32.0 / 4096,
      .uses_importance = false,
      .max_abs_input = std::numeric_limits<float>::max() / 128,  // x · 127 and q · SCB stay finite
      .row_local = true,
      .tolerance = {0.012, 0.037, 0.1},  // measured 0.0091 / 0.0285 / (outlier rows) times 1.3
      .description = "bitsandbytes LLM.int8() weights: int8 per row with its fp32 absmax (SCB)",
      .tensor_bytes = &rows_times_row_bytes<row_bytes>,
      .quantize = &quantize_rows<&quantize_row, row_bytes>,
      .dequantize = &dequantize_rows<&dequantize_row, row_bytes>,
  };
}

}  // namespace lowbit::formats
