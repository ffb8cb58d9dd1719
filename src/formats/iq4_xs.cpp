// iq4_xs (ggml type 23): super-blocks of 256 = 8 blocks of 32 on the iq4 grid, with
// signed 6-bit block scales and one fp16 super-scale. Value = d * (ls - 32) * grid[q].
#include <cstddef>

#include "formats/format_impl.h"
#include "formats/blocks.h"
#include "formats/formats.h"
#include "formats/iq4_search.h"
#include "formats/scale_search.h"

namespace lowbit::formats {
namespace {

constexpr int kSuper = 256;


// idl (optional, 8 floats): the unrounded 1/(d·l) each sub-block's indices are chosen with.
void quantize_block(const float* x, const float* qw, BlockIq4Xs& b, float* idl_out = nullptr) {
  const float sigma2 = 2 * mean_square(x, kSuper);
  float scales[8], w[32];
  uint8_t L[kSuper];
  float max_scale = 0, amax_scale = 0;
  for (int ib = 0; ib < 8; ++ib) {
    const float* xb = x + 32 * ib;
    if (qw) {
      importance_weights(xb, qw + 32 * ib, sigma2, 32, w);
    } else {
      for (int j = 0; j < 32; ++j) w[j] = xb[j] * xb[j];
    }
    scales[ib] = iq4_block_scale(32, xb, w, 7, L + 32 * ib);
    if (std::fabs(scales[ib]) > amax_scale) {
      amax_scale = std::fabs(scales[ib]);
      max_scale = scales[ib];
    }
  }
  b = BlockIq4Xs{};
  const float d = -max_scale / 32;
  b.d = f2h(d);
  const float id = d ? 1 / d : 0.f;
  for (int ib = 0; ib < 8; ++ib) {
    int l = std::clamp(nearest_int(id * scales[ib]), -32, 31);
    const float dl = d * l;
    const float idl = dl ? 1 / dl : 0.f;
    if (idl_out) idl_out[ib] = idl;
    for (int j = 0; j < 32; ++j) {
      L[32 * ib + j] = static_cast<uint8_t>(nearest_grid_index(kIq4Grid, idl * x[32 * ib + j]));
    }
    l += 32;
    b.scales_l[ib / 2] = static_cast<uint8_t>(b.scales_l[ib / 2] | ((l & 0xF) << (4 * (ib % 2))));
    b.scales_h = static_cast<uint16_t>(b.scales_h | ((l >> 4) << (2 * ib)));
  }
  for (int i = 0; i < 8; ++i) {
    for (int j = 0; j < 16; ++j) {
      b.qs[16 * i + j] = static_cast<uint8_t>(L[32 * i + j] | (L[32 * i + 16 + j] << 4));
    }
  }
}

void quantize_row(const float* x, const float* importance, int64_t n, uint8_t* out) {
  for (int64_t i = 0; i < n / kSuper; ++i) {
    BlockIq4Xs b;
    quantize_block(x + i * kSuper, importance ? importance + i * kSuper : nullptr, b);
    store_block(b, out + i * sizeof(BlockIq4Xs));
  }
}

// Fit: the super-block as quantize makes it, aux the 8 inverse sub-scales it assigns
// indices with. Round: the grid index nearest x·idl, as quantize assigns them.
void fit(const float* x, int64_t, const float* importance, float, uint8_t* block, float* aux) {
  BlockIq4Xs b;
  quantize_block(x, importance, b, aux);
  store_block(b, block);
}

float round(uint8_t* block, const float* aux, int64_t, int64_t e, float x) {
  const int ib = static_cast<int>(e / 32), j = static_cast<int>(e % 32);
  uint8_t* q = block + offsetof(BlockIq4Xs, qs) + 16 * ib + j % 16;
  const int shift = j < 16 ? 0 : 4;
  set_bits(q, shift, 4, nearest_grid_index(kIq4Grid, aux[ib] * x));
  uint16_t scales_h;
  std::memcpy(&scales_h, block + offsetof(BlockIq4Xs, scales_h), 2);
  const int ls = ((block[offsetof(BlockIq4Xs, scales_l) + ib / 2] >> (4 * (ib % 2))) & 0xF) | (((scales_h >> (2 * ib)) & 3) << 4);
  const float dl = load_half(block + offsetof(BlockIq4Xs, d)) * (ls - 32);
  return dl * kIq4Grid[get_bits(q, shift, 4)];
}

constexpr FitRound kFitRound{8, &fit, &round};

void dequantize_row(const uint8_t* in, int64_t n, float* out) {
  for (int64_t i = 0; i < n / kSuper; ++i) {
    const auto b = load_block<BlockIq4Xs>(in + i * sizeof(BlockIq4Xs));
    const float d = h2f(b.d);
    float* y = out + i * kSuper;
    for (int ib = 0; ib < 8; ++ib) {
      const int ls = ((b.scales_l[ib / 2] >> (4 * (ib % 2))) & 0xF) | (((b.scales_h >> (2 * ib)) & 3) << 4);
      const float dl = d * (ls - 32);
      const uint8_t* qs = b.qs + 16 * ib;
      for (int j = 0; j < 16; ++j) {
        y[j] = dl * kIq4Grid[qs[j] & 0xF];
        y[j + 16] = dl * kIq4Grid[qs[j] >> 4];
      }
      y += 32;
    }
  }
}

}  // namespace

Format iq4_xs_format() {
  return block_format<BlockIq4Xs, kSuper, quantize_row, dequantize_row>(
      "iq4_xs", 23, FormatKind::kNonLinear, true, {0.099, 0.15, 0.05},
      "ggml IQ4_XS: 256-superblocks, 8x32 blocks with 6-bit scales on the iq4 grid", &kFitRound);
}

}  // namespace lowbit::formats
