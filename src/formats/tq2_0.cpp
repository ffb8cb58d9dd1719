// tq2_0 (ggml type 35): ternary super-blocks of 256, 2 bits per element, fp16 scale = absmax.
#include "formats/format_impl.h"
#include "formats/formats.h"

namespace lowbit::formats {
namespace {

constexpr int kSuper = 256;

struct BlockTq2_0 {
  uint8_t qs[kSuper / 4];  // per 128 elements: byte m holds elements m, m+32, m+64, m+96
                           // at bits 0, 2, 4, 6 (each t in {0,1,2})
  uint16_t d;              // fp16 scale; value = (t - 1) * d
};
static_assert(sizeof(BlockTq2_0) == 66, "tq2_0 block is 66 bytes (2.0625 bpw)");

void quantize_row(const float* x, const float* /*importance*/, int64_t n, uint8_t* out) {
  for (int64_t i = 0; i < n / kSuper; ++i) {
    const float* xb = x + i * kSuper;
    float amax = 0;
    for (int j = 0; j < kSuper; ++j) amax = std::max(amax, std::fabs(xb[j]));
    const float id = amax ? 1.0f / amax : 0.0f;
    BlockTq2_0 b{};
    b.d = f2h(amax);
    for (int j = 0; j < kSuper / 4; j += 32) {
      for (int m = 0; m < 32; ++m) {
        int q = 0;
        for (int t = 0; t < 4; ++t) {
          const int v = static_cast<int>(std::lround(xb[4 * j + m + 32 * t] * id)) + 1;
          q |= (v & 3) << (2 * t);
        }
        b.qs[j + m] = static_cast<uint8_t>(q);
      }
    }
    store_block(b, out + i * sizeof(BlockTq2_0));
  }
}

void dequantize_row(const uint8_t* in, int64_t n, float* out) {
  for (int64_t i = 0; i < n / kSuper; ++i) {
    const auto b = load_block<BlockTq2_0>(in + i * sizeof(BlockTq2_0));
    const float d = h2f(b.d);
    float* y = out + i * kSuper;
    for (int j = 0; j < kSuper / 4; j += 32) {
      for (int t = 0; t < 4; ++t) {
        for (int m = 0; m < 32; ++m) *y++ = static_cast<float>(((b.qs[j + m] >> (2 * t)) & 3) - 1) * d;
      }
    }
  }
}

}  // namespace

Format tq2_0_format() {
  return block_format<BlockTq2_0, kSuper, quantize_row, dequantize_row>(
      "tq2_0", 35, FormatKind::kTernary, false, {0.85, 0.95, 0.05},
      "ggml TQ2_0: ternary 256-superblocks, 2 bits per element");
}

}  // namespace lowbit::formats
