// q8_0 (ggml type 8): blocks of 32, fp16 scale amax/127, int8 levels. Matches ggml byte
// for byte; importance weights do not change it (as in ggml).
#include <cstddef>

#include "formats/format_impl.h"
#include "formats/blocks.h"
#include "formats/formats.h"

namespace lowbit::formats {
namespace {

constexpr int kBlock = 32;


void quantize_row(const float* x, const float* /*importance*/, int64_t n, uint8_t* out) {
  for (int64_t ib = 0; ib < n / kBlock; ++ib) {
    const float* xb = x + ib * kBlock;
    float amax = 0;
    for (int j = 0; j < kBlock; ++j) amax = std::max(amax, std::fabs(xb[j]));
    const float d = amax / 127;
    const float id = d ? 1.0f / d : 0.0f;
    BlockQ8_0 b{};
    b.d = f2h(d);
    for (int j = 0; j < kBlock; ++j) b.qs[j] = static_cast<int8_t>(std::round(xb[j] * id));
    store_block(b, out + ib * sizeof(BlockQ8_0));
  }
}

// Fit: the block as quantize makes it, and the unrounded 1/d it rounds with (aux[0]).
// Round: round(x/d) as quantize does, clamped to the level range.
void fit(const float* x, int64_t, const float*, float, uint8_t* block, float* aux) {
  quantize_row(x, nullptr, kBlock, block);
  float amax = 0;
  for (int j = 0; j < kBlock; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / 127;
  aux[0] = d ? 1.0f / d : 0.0f;
}

float round(uint8_t* block, const float* aux, int64_t, int64_t i, float x) {
  const float d = load_half(block + offsetof(BlockQ8_0, d));
  auto* q = reinterpret_cast<int8_t*>(block + offsetof(BlockQ8_0, qs) + i);
  *q = static_cast<int8_t>(std::round(std::clamp(x * aux[0], -127.0f, 127.0f)));
  return *q * d;
}

constexpr FitRound kFitRound{1, &fit, &round};

void dequantize_row(const uint8_t* in, int64_t n, float* out) {
  for (int64_t ib = 0; ib < n / kBlock; ++ib) {
    const auto b = load_block<BlockQ8_0>(in + ib * sizeof(BlockQ8_0));
    const float d = h2f(b.d);
    for (int j = 0; j < kBlock; ++j) out[ib * kBlock + j] = b.qs[j] * d;
  }
}

}  // namespace

Format q8_0_format() {
  return block_format<BlockQ8_0, kBlock, quantize_row, dequantize_row>(
      "q8_0", 8, FormatKind::kLegacy, false, {0.007, 0.013, 0.01},
      "ggml Q8_0: 32-blocks, fp16 scale, int8 symmetric", &kFitRound);
}

}  // namespace lowbit::formats
