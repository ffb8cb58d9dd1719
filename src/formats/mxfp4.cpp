// mxfp4 (OCP Microscaling; ggml type 39): blocks of 32 FP4 E2M1 values sharing one E8M0
// power-of-two scale. Same layout and encoder as ggml's MXFP4.
#include <cmath>

#include "formats/format_impl.h"
#include "formats/formats.h"
#include "formats/mxfp4_codes.h"

namespace lowbit::formats {
namespace {

constexpr int kBlock = 32;

struct BlockMxfp4 {
  uint8_t e;               // E8M0 exponent; value = kE2M1x2[q] * 2^(e - 127) / 2
  uint8_t qs[kBlock / 2];  // byte j: element j (low nibble), element j+16 (high nibble)
};
static_assert(sizeof(BlockMxfp4) == 17, "mxfp4 block is 17 bytes (4.25 bpw)");

float half_scale(uint8_t e) { return mxfp4_half_scale(e); }

int nearest_e2m1(float x, float d) {
  int best = 0;
  float best_err = std::fabs(kE2M1x2[0] * d - x);
  for (int i = 1; i < 16; ++i) {
    const float err = std::fabs(kE2M1x2[i] * d - x);
    if (err < best_err) {
      best = i;
      best_err = err;
    }
  }
  return best;
}

void quantize_row(const float* x, const float*, int64_t n, uint8_t* out) {
  for (int64_t ib = 0; ib < n / kBlock; ++ib) {
    const float* xb = x + ib * kBlock;
    float amax = 0;
    for (int j = 0; j < kBlock; ++j) amax = std::max(amax, std::fabs(xb[j]));
    // amax / 2^(e-127) lies in [4, 8): the largest element maps near E2M1's top value 6
    // (clipping above it), as ggml's encoder does.
    const int e = amax > 0 ? static_cast<int>(std::floor(std::log2(amax))) - 2 + 127 : 0;
    BlockMxfp4 b{};
    b.e = static_cast<uint8_t>(std::clamp(e, 0, 254));
    const float d = half_scale(b.e);
    for (int j = 0; j < kBlock / 2; ++j) {
      b.qs[j] = static_cast<uint8_t>(nearest_e2m1(xb[j], d) | (nearest_e2m1(xb[j + 16], d) << 4));
    }
    store_block(b, out + ib * sizeof(BlockMxfp4));
  }
}

void dequantize_row(const uint8_t* in, int64_t n, float* out) {
  for (int64_t ib = 0; ib < n / kBlock; ++ib) {
    const auto b = load_block<BlockMxfp4>(in + ib * sizeof(BlockMxfp4));
    const float d = half_scale(b.e);
    for (int j = 0; j < kBlock / 2; ++j) {
      out[ib * kBlock + j] = kE2M1x2[b.qs[j] & 0xF] * d;
      out[ib * kBlock + j + 16] = kE2M1x2[b.qs[j] >> 4] * d;
    }
  }
}

}  // namespace

Format mxfp4_format() {
  Format f = block_format<BlockMxfp4, kBlock, quantize_row, dequantize_row>(
      "mxfp4", 39, FormatKind::kMicroscaling, false, {0.145, 0.21, 0.2},
      "OCP MXFP4: 32-blocks of E2M1 with a shared E8M0 scale (ggml MXFP4)");
  f.max_abs_input = 0x1.8p127f;  // 6 * 2^126: the largest E8M0 scale (2^127 / 2) times 12
  return f;
}

}  // namespace lowbit::formats
