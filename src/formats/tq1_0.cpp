// tq1_0 (ggml type 34): ternary super-blocks of 256, base-3 packed: 5 trits per byte in
// qs (240 elements), 4 trits per byte in qh (16 elements), fp16 scale = absmax.
#include "formats/format_impl.h"
#include "formats/formats.h"

namespace lowbit::formats {
namespace {

constexpr int kSuper = 256;

struct BlockTq1_0 {
  uint8_t qs[48];  // 5 trits each: bytes 0..31 cover elements 0..159 (trit n of byte m is
                   // element 32n+m), bytes 32..47 elements 160..239 (16n+m)
  uint8_t qh[4];   // 4 trits each: element 240 + 4*... (trit n of byte m is element 240+4n+m)
  uint16_t d;      // fp16 scale; value = (t - 1) * d, t in {0, 1, 2}
};
static_assert(sizeof(BlockTq1_0) == 54, "tq1_0 block is 54 bytes (1.6875 bpw)");

// Packs trits (most significant first) into a byte as ceil(v * 256 / 243), so that the
// decoder's multiply-by-3-and-take-the-high-byte recovers them.
uint8_t pack_trits(uint32_t v) { return static_cast<uint8_t>((v * 256 + 242) / 243); }

int trit(float x, float id) { return static_cast<int>(std::lround(x * id)) + 1; }

void quantize_row(const float* x, const float* /*importance*/, int64_t n, uint8_t* out) {
  for (int64_t i = 0; i < n / kSuper; ++i) {
    const float* xb = x + i * kSuper;
    float amax = 0;
    for (int j = 0; j < kSuper; ++j) amax = std::max(amax, std::fabs(xb[j]));
    const float id = amax ? 1.0f / amax : 0.0f;
    BlockTq1_0 b{};
    b.d = f2h(amax);
    for (int m = 0; m < 32; ++m) {
      uint32_t v = 0;
      for (int t = 0; t < 5; ++t) v = v * 3 + trit(xb[m + 32 * t], id);
      b.qs[m] = pack_trits(v);
    }
    for (int m = 0; m < 16; ++m) {
      uint32_t v = 0;
      for (int t = 0; t < 5; ++t) v = v * 3 + trit(xb[160 + m + 16 * t], id);
      b.qs[32 + m] = pack_trits(v);
    }
    for (int m = 0; m < 4; ++m) {
      uint32_t v = 0;
      for (int t = 0; t < 4; ++t) v = v * 3 + trit(xb[240 + m + 4 * t], id);
      b.qh[m] = pack_trits(v * 3);  // the first trit goes to the most significant place
    }
    store_block(b, out + i * sizeof(BlockTq1_0));
  }
}

// Trit n (0 = most significant) of a packed byte.
int unpack_trit(uint8_t q, int n) {
  static constexpr uint8_t kPow3[5] = {1, 3, 9, 27, 81};
  const auto shifted = static_cast<uint8_t>(q * kPow3[n]);
  return (static_cast<uint16_t>(shifted) * 3) >> 8;
}

void dequantize_row(const uint8_t* in, int64_t n, float* out) {
  for (int64_t i = 0; i < n / kSuper; ++i) {
    const auto b = load_block<BlockTq1_0>(in + i * sizeof(BlockTq1_0));
    const float d = h2f(b.d);
    float* y = out + i * kSuper;
    for (int t = 0; t < 5; ++t) {
      for (int m = 0; m < 32; ++m) y[32 * t + m] = static_cast<float>(unpack_trit(b.qs[m], t) - 1) * d;
    }
    for (int t = 0; t < 5; ++t) {
      for (int m = 0; m < 16; ++m) {
        y[160 + 16 * t + m] = static_cast<float>(unpack_trit(b.qs[32 + m], t) - 1) * d;
      }
    }
    for (int t = 0; t < 4; ++t) {
      for (int m = 0; m < 4; ++m) y[240 + 4 * t + m] = static_cast<float>(unpack_trit(b.qh[m], t) - 1) * d;
    }
  }
}

}  // namespace

Format tq1_0_format() {
  return block_format<BlockTq1_0, kSuper, quantize_row, dequantize_row>(
      "tq1_0", 34, FormatKind::kTernary, false, {0.85, 0.95, 0.05},
      "ggml TQ1_0: ternary 256-superblocks, base-3 packed (BitNet b1.58)");
}

}  // namespace lowbit::formats
