// Scalar unpackers of the int8 path: a weight row's bytes → unsigned codes u and one affine
// map per 16 elements, value = a * u + b, exactly the values the format's dequantize gives.
// One function per format, in the format table's order; the table at the end lists them.
// Not the SIMD kernels (they fuse this step into the dot product).
#include <cstring>
#include <iterator>
#include <vector>

#include "formats/blocks.h"
#include "formats/format_impl.h"
#include "formats/iq4_search.h"
#include "formats/kquant_scales.h"
#include "formats/legacy_quant.h"
#include "formats/mxfp4_codes.h"
#include "kernels/kernel_impl.h"
#include "kernels/ternary_codes.h"

namespace lowbit::kernels {
namespace {

using namespace lowbit::formats;

// Zero codes and maps from element `from` to the padded end.
void zero_tail(int64_t from, int64_t cols, uint8_t* u, float* a, float* b) {
  const int64_t padded = q8_padded(cols);
  std::memset(u + from, 0, static_cast<size_t>(padded - from));
  for (int64_t s = from / kQ8Sub; s < padded / kQ8Sub; ++s) a[s] = b[s] = 0.0f;
}

// Sets the map of the `count` sub-blocks from s.
void set_map(float* a, float* b, int64_t s, int count, float av, float bv) {
  for (int k = 0; k < count; ++k) {
    a[s + k] = av;
    b[s + k] = bv;
  }
}

void unpack_q4_0(const uint8_t* row, int64_t cols, uint8_t* u, float* a, float* b) {
  for (int64_t ib = 0; ib < cols / 32; ++ib) {
    const auto blk = load_block<BlockQ4_0>(row + ib * sizeof(BlockQ4_0));
    const float d = h2f(blk.d);
    for (int j = 0; j < 16; ++j) {
      u[32 * ib + j] = blk.qs[j] & 0xF;
      u[32 * ib + j + 16] = blk.qs[j] >> 4;
    }
    set_map(a, b, 2 * ib, 2, d, -8.0f * d);
  }
  zero_tail(cols, cols, u, a, b);
}

void unpack_q4_1(const uint8_t* row, int64_t cols, uint8_t* u, float* a, float* b) {
  for (int64_t ib = 0; ib < cols / 32; ++ib) {
    const auto blk = load_block<BlockQ4_1>(row + ib * sizeof(BlockQ4_1));
    for (int j = 0; j < 16; ++j) {
      u[32 * ib + j] = blk.qs[j] & 0xF;
      u[32 * ib + j + 16] = blk.qs[j] >> 4;
    }
    set_map(a, b, 2 * ib, 2, h2f(blk.d), h2f(blk.m));
  }
  zero_tail(cols, cols, u, a, b);
}

void unpack_q5_0(const uint8_t* row, int64_t cols, uint8_t* u, float* a, float* b) {
  for (int64_t ib = 0; ib < cols / 32; ++ib) {
    const auto blk = load_block<BlockQ5_0>(row + ib * sizeof(BlockQ5_0));
    uint32_t qh;
    std::memcpy(&qh, blk.qh, 4);
    for (int j = 0; j < 32; ++j) u[32 * ib + j] = static_cast<uint8_t>(unpack_5bit(blk.qs, qh, j));
    const float d = h2f(blk.d);
    set_map(a, b, 2 * ib, 2, d, -16.0f * d);
  }
  zero_tail(cols, cols, u, a, b);
}

void unpack_q5_1(const uint8_t* row, int64_t cols, uint8_t* u, float* a, float* b) {
  for (int64_t ib = 0; ib < cols / 32; ++ib) {
    const auto blk = load_block<BlockQ5_1>(row + ib * sizeof(BlockQ5_1));
    uint32_t qh;
    std::memcpy(&qh, blk.qh, 4);
    for (int j = 0; j < 32; ++j) u[32 * ib + j] = static_cast<uint8_t>(unpack_5bit(blk.qs, qh, j));
    set_map(a, b, 2 * ib, 2, h2f(blk.d), h2f(blk.m));
  }
  zero_tail(cols, cols, u, a, b);
}

void unpack_q8_0(const uint8_t* row, int64_t cols, uint8_t* u, float* a, float* b) {
  for (int64_t ib = 0; ib < cols / 32; ++ib) {
    const auto blk = load_block<BlockQ8_0>(row + ib * sizeof(BlockQ8_0));
    for (int j = 0; j < 32; ++j) u[32 * ib + j] = static_cast<uint8_t>(blk.qs[j] + 128);
    const float d = h2f(blk.d);
    set_map(a, b, 2 * ib, 2, d, -128.0f * d);
  }
  zero_tail(cols, cols, u, a, b);
}

void unpack_q2_k(const uint8_t* row, int64_t cols, uint8_t* u, float* a, float* b) {
  for (int64_t i = 0; i < cols / 256; ++i) {
    const auto blk = load_block<BlockQ2_K>(row + i * sizeof(BlockQ2_K));
    const float d = h2f(blk.d), dmin = h2f(blk.dmin);
    uint8_t* y = u + 256 * i;
    for (int s = 0; s < 16; ++s) {  // output sub-block s: half s/8, shift 2*((s%8)/2), part s%2
      const uint8_t* q = blk.qs + 32 * (s / 8) + 16 * (s % 2);
      const int shift = 2 * ((s % 8) / 2);
      for (int l = 0; l < 16; ++l) y[16 * s + l] = (q[l] >> shift) & 3;
      set_map(a, b, 16 * i + s, 1, d * (blk.scales[s] & 0xF), -dmin * (blk.scales[s] >> 4));
    }
  }
  zero_tail(cols, cols, u, a, b);
}

void unpack_q3_k(const uint8_t* row, int64_t cols, uint8_t* u, float* a, float* b) {
  for (int64_t i = 0; i < cols / 256; ++i) {
    const auto blk = load_block<BlockQ3_K>(row + i * sizeof(BlockQ3_K));
    const float d = h2f(blk.d);
    for (int j = 0; j < 256; ++j) {  // value = dl * (low + 4 * high - 4)
      const int within = j % 128, shift = 2 * (within / 32), l = within % 32;
      const int low = (blk.qs[32 * (j / 128) + l] >> shift) & 3, high = (blk.hmask[l] >> (j / 32)) & 1;
      u[256 * i + j] = static_cast<uint8_t>(low + 4 * high);
    }
    for (int s = 0; s < 16; ++s) {
      const float dl = d * static_cast<float>(q3_k_scale(blk.scales, s));
      set_map(a, b, 16 * i + s, 1, dl, -4.0f * dl);
    }
  }
  zero_tail(cols, cols, u, a, b);
}

void unpack_q4_k(const uint8_t* row, int64_t cols, uint8_t* u, float* a, float* b) {
  for (int64_t i = 0; i < cols / 256; ++i) {
    const auto blk = load_block<BlockQ4_K>(row + i * sizeof(BlockQ4_K));
    const float d = h2f(blk.d), dmin = h2f(blk.dmin);
    for (int j = 0; j < 4; ++j) {
      const uint8_t* q = blk.qs + 32 * j;
      uint8_t* y = u + 256 * i + 64 * j;
      for (int l = 0; l < 32; ++l) {
        y[l] = q[l] & 0xF;
        y[l + 32] = q[l] >> 4;
      }
      for (int h = 0; h < 2; ++h) {
        uint8_t sc, m;
        unpack_scale_min_k4(blk.scales, 2 * j + h, &sc, &m);
        set_map(a, b, 16 * i + 4 * j + 2 * h, 2, d * sc, -(dmin * m));
      }
    }
  }
  zero_tail(cols, cols, u, a, b);
}

void unpack_q5_k(const uint8_t* row, int64_t cols, uint8_t* u, float* a, float* b) {
  for (int64_t i = 0; i < cols / 256; ++i) {
    const auto blk = load_block<BlockQ5_K>(row + i * sizeof(BlockQ5_K));
    const float d = h2f(blk.d), dmin = h2f(blk.dmin);
    for (int c = 0; c < 4; ++c) {
      const uint8_t* ql = blk.qs + 32 * c;
      uint8_t* y = u + 256 * i + 64 * c;
      const int u1 = 1 << (2 * c), u2 = 2 << (2 * c);
      for (int l = 0; l < 32; ++l) {
        y[l] = static_cast<uint8_t>((ql[l] & 0xF) + (blk.qh[l] & u1 ? 16 : 0));
        y[l + 32] = static_cast<uint8_t>((ql[l] >> 4) + (blk.qh[l] & u2 ? 16 : 0));
      }
      for (int h = 0; h < 2; ++h) {
        uint8_t sc, m;
        unpack_scale_min_k4(blk.scales, 2 * c + h, &sc, &m);
        set_map(a, b, 16 * i + 4 * c + 2 * h, 2, d * sc, -(dmin * m));
      }
    }
  }
  zero_tail(cols, cols, u, a, b);
}

void unpack_q6_k(const uint8_t* row, int64_t cols, uint8_t* u, float* a, float* b) {
  for (int64_t i = 0; i < cols / 256; ++i) {
    const auto blk = load_block<BlockQ6_K>(row + i * sizeof(BlockQ6_K));
    const float d = h2f(blk.d);
    for (int half = 0; half < 2; ++half) {
      const uint8_t* ql = blk.ql + 64 * half;
      const uint8_t* qh = blk.qh + 32 * half;
      uint8_t* y = u + 256 * i + 128 * half;
      for (int l = 0; l < 32; ++l) {
        y[l] = static_cast<uint8_t>((ql[l] & 0xF) | ((qh[l] & 3) << 4));
        y[l + 32] = static_cast<uint8_t>((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4));
        y[l + 64] = static_cast<uint8_t>((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4));
        y[l + 96] = static_cast<uint8_t>((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4));
      }
    }
    for (int s = 0; s < 16; ++s) {
      const float dl = d * blk.scales[s];
      set_map(a, b, 16 * i + s, 1, dl, -32.0f * dl);
    }
  }
  zero_tail(cols, cols, u, a, b);
}

void unpack_iq4_nl(const uint8_t* row, int64_t cols, uint8_t* u, float* a, float* b) {
  for (int64_t ib = 0; ib < cols / 32; ++ib) {
    const auto blk = load_block<BlockIq4Nl>(row + ib * sizeof(BlockIq4Nl));
    for (int j = 0; j < 16; ++j) {
      u[32 * ib + j] = static_cast<uint8_t>(kIq4Grid[blk.qs[j] & 0xF] + 128);
      u[32 * ib + j + 16] = static_cast<uint8_t>(kIq4Grid[blk.qs[j] >> 4] + 128);
    }
    const float d = h2f(blk.d);
    set_map(a, b, 2 * ib, 2, d, -128.0f * d);
  }
  zero_tail(cols, cols, u, a, b);
}

void unpack_iq4_xs(const uint8_t* row, int64_t cols, uint8_t* u, float* a, float* b) {
  for (int64_t i = 0; i < cols / 256; ++i) {
    const auto blk = load_block<BlockIq4Xs>(row + i * sizeof(BlockIq4Xs));
    const float d = h2f(blk.d);
    for (int ib = 0; ib < 8; ++ib) {
      const int ls = ((blk.scales_l[ib / 2] >> (4 * (ib % 2))) & 0xF) | (((blk.scales_h >> (2 * ib)) & 3) << 4);
      const float dl = d * static_cast<float>(ls - 32);
      const uint8_t* qs = blk.qs + 16 * ib;
      uint8_t* y = u + 256 * i + 32 * ib;
      for (int j = 0; j < 16; ++j) {
        y[j] = static_cast<uint8_t>(kIq4Grid[qs[j] & 0xF] + 128);
        y[j + 16] = static_cast<uint8_t>(kIq4Grid[qs[j] >> 4] + 128);
      }
      set_map(a, b, 16 * i + 2 * ib, 2, dl, -128.0f * dl);
    }
  }
  zero_tail(cols, cols, u, a, b);
}

// mxfp4: u = doubled E2M1 value + 12 (0..24), a = the half scale, b = -12 a.
void unpack_mxfp4(const uint8_t* row, int64_t cols, uint8_t* u, float* a, float* b) {
  constexpr int64_t kBlockBytes = 17;  // e, then 16 bytes: element j low nibble, j + 16 high
  for (int64_t ib = 0; ib < cols / 32; ++ib) {
    const uint8_t* blk = row + ib * kBlockBytes;
    uint8_t* y = u + 32 * ib;
    for (int j = 0; j < 16; ++j) {
      y[j] = static_cast<uint8_t>(kE2M1x2[blk[1 + j] & 0xF] + 12);
      y[j + 16] = static_cast<uint8_t>(kE2M1x2[blk[1 + j] >> 4] + 12);
    }
    const float d = mxfp4_half_scale(blk[0]);
    set_map(a, b, 2 * ib, 2, d, -12.0f * d);
  }
  zero_tail(cols, cols, u, a, b);
}

// tq1_0, tq2_0: u = t, a = d, b = -d per super-block (ternary_codes.h).
template <const char* Name>
void unpack_ternary(const uint8_t* row, int64_t cols, uint8_t* u, float* a, float* b) {
  static const Format& f = format_by_name(Name);
  for (int64_t i = 0; i < cols / kTernarySuper; ++i) {
    const float d = ternary_codes(f, row + i * f.block_bytes, u + kTernarySuper * i);
    set_map(a, b, 16 * i, 16, d, -d);
  }
  zero_tail(cols, cols, u, a, b);
}
constexpr char kTq1_0[] = "tq1_0", kTq2_0[] = "tq2_0";

// bnb_int8: u = q + 128, value = (q · SCB) / 127 ≈ a u + b with a = SCB / 127 (the int8
// path's product rounds differently from the reference's by at most one ulp per element).
void unpack_bnb_int8(const uint8_t* row, int64_t cols, uint8_t* u, float* a, float* b) {
  float scb;
  std::memcpy(&scb, row, 4);
  for (int64_t i = 0; i < cols; ++i) u[i] = static_cast<uint8_t>(static_cast<int8_t>(row[4 + i]) + 128);
  const float d = scb * (1.0f / 127.0f);
  zero_tail(cols, cols, u, a, b);  // padding: u = 0 against zero activations
  set_map(a, b, 0, static_cast<int>((cols + kQ8Sub - 1) / kQ8Sub), d, -128.0f * d);
}

constexpr UnpackEntry kUnpackers[] = {
    {"q4_0", &unpack_q4_0}, {"q4_1", &unpack_q4_1}, {"q5_0", &unpack_q5_0},     {"q5_1", &unpack_q5_1},
    {"q8_0", &unpack_q8_0}, {"q2_k", &unpack_q2_k}, {"q3_k", &unpack_q3_k},     {"q4_k", &unpack_q4_k},
    {"q5_k", &unpack_q5_k}, {"q6_k", &unpack_q6_k}, {"iq4_nl", &unpack_iq4_nl}, {"iq4_xs", &unpack_iq4_xs},
    {"mxfp4", &unpack_mxfp4}, {"tq1_0", &unpack_ternary<kTq1_0>}, {"tq2_0", &unpack_ternary<kTq2_0>},
    {"bnb_int8", &unpack_bnb_int8},
};

}  // namespace

std::vector<UnpackEntry> int_affine_unpackers();  // unpack_int_affine.cpp

std::span<const UnpackEntry> unpack_table() {
  static const std::vector<UnpackEntry> table = [] {
    std::vector<UnpackEntry> t(std::begin(kUnpackers), std::end(kUnpackers));
    for (const UnpackEntry& e : int_affine_unpackers()) t.push_back(e);
    return t;
  }();
  return table;
}

}  // namespace lowbit::kernels
