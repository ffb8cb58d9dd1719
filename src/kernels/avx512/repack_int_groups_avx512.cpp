// The group-wise and per-row int formats (GPTQ/AWQ's int{2,3,4,8}_{g32,g64,g128,pc}_{sym,asym})
// repacked for AVX-512 VNNI (per row: one group of the row's length, which must then be a
// multiple of the code unit, 32 columns or 16 for int8). int4: 16 rows per group, per column group of G (the format's group
// size)
//   32 bytes: the 16 rows' fp16 scales d;
//   16 bytes (asym only): the 16 rows' u8 zeros z (sym: z = 8 for every row);
//   G/32 chunks of 256 bytes: four 64-byte vectors V_j per 32 columns, lane r = four bytes
//              of row r whose low nibbles are elements 4j..4j+3 and high nibbles
//              16+4j..16+4j+3 (the order repack_nibble32_avx512.cpp uses for q4_0; the
//              file stores element i in nibble i % 2 of byte i / 2).
// The same bytes as the file (8G + 48 per 16 rows for asym, as 16 rows of 3 + G/2).
// int8: the same header, then G/4 vectors V_j, lane r = row r's codes 4j..4j+3 (sym: z =
// 128); the same bytes as the file too. The u8 codes go to VPDPBUSD as they are.
// int2 and int3: the same header, then per 32 columns a unit of 128 (int2) or 192 (int3)
// bytes in the layout of q2_k and q3_k (repack_common.h, low_bit_codes); sym zeros 2 and 4.
// value = d (q - z): the codes' sums are scaled by d per 16-column sub-block and the
// d z Σx term is taken once per column group.
#include <immintrin.h>

#include <cstring>
#include <span>

#include "formats/blocks.h"
#include "kernels/avx512/repack_common.h"
#include "kernels/kernel_impl.h"

namespace lowbit::kernels {
namespace {

using namespace avx512;

// Bytes of one column group (G columns; G = 0: the whole row, the per-row formats) of 16
// rows, in the file and packed.
template <int Bits, int G, bool Sym>
struct Layout {
  static constexpr int64_t kHeader = Sym ? 2 : 3;  // file: fp16 scale [u8 zero]
  static constexpr int64_t kCodesAt = Sym ? 32 : 48;
  static constexpr float kSymZero = 1 << (Bits - 1);
  static constexpr int kUnitCols = Bits == 8 ? 16 : 32;          // columns per code unit
  static constexpr int64_t kUnitBytes = 2 * kUnitCols * Bits;    // 16 rows of them
  static constexpr int64_t group_cols(int64_t cols) { return G == 0 ? cols : G; }
  static constexpr int64_t block_bytes(int64_t cols) { return kHeader + group_cols(cols) * Bits / 8; }
  static constexpr int64_t packed(int64_t cols) { return kCodesAt + 2 * group_cols(cols) * Bits; }  // 16 rows of codes
};

template <int Bits, int G, bool Sym>
uint64_t packed_bytes_of(int64_t rows, int64_t cols) {
  using L = Layout<Bits, G, Sym>;
  return static_cast<uint64_t>((rows + kGroup - 1) / kGroup) * static_cast<uint64_t>(cols / L::group_cols(cols)) *
         static_cast<uint64_t>(L::packed(cols));
}

// Code i of a little-endian bit stream of Bits-bit codes.
template <int Bits>
int stream_code(const uint8_t* codes, int i) {
  const int bit = i * Bits;
  const int two = codes[bit / 8] | (bit % 8 + Bits > 8 ? codes[bit / 8 + 1] << 8 : 0);
  return (two >> (bit % 8)) & ((1 << Bits) - 1);
}

template <int Bits, int G, bool Sym>
void repack(const uint8_t* data, int64_t rows, int64_t cols, uint8_t* out) {
  using L = Layout<Bits, G, Sym>;
  const int g = static_cast<int>(L::group_cols(cols));
  repack_rows(data, rows, cols, out, 0, g, L::block_bytes(cols), L::packed(cols), [g](uint8_t* dst, const uint8_t* blk, int r) {
    std::memcpy(dst + 2 * r, blk, 2);
    if constexpr (!Sym) dst[32 + r] = blk[2];
    const uint8_t* codes = blk + L::kHeader;
    if constexpr (Bits == 8) {
      for (int j = 0; j < g / 4; ++j) std::memcpy(dst + L::kCodesAt + 64 * j + 4 * r, codes + 4 * j, 4);
    } else if constexpr (Bits < 4) {
      for (int c = 0; c < g / 32; ++c) {
        uint8_t* unit = dst + L::kCodesAt + L::kUnitBytes * c;
        for (int h = 0; h < 2; ++h) {
          for (int j = 0; j < 4; ++j) {
            for (int e = 0; e < 4; ++e) put_low_bit_code<Bits>(unit, r, h, j, e, stream_code<Bits>(codes, 32 * c + 16 * h + 4 * j + e));
          }
        }
      }
    } else {
      for (int c = 0; c < g / 32; ++c) {
        uint8_t qs[16];
        for (int k = 0; k < 16; ++k) {
          const int lo = 32 * c + k, hi = lo + 16;
          qs[k] = static_cast<uint8_t>(((codes[lo / 2] >> (4 * (lo % 2))) & 0xF) | (((codes[hi / 2] >> (4 * (hi % 2))) & 0xF) << 4));
        }
        for (int j = 0; j < 4; ++j) std::memcpy(dst + L::kCodesAt + 256 * c + 64 * j + 4 * r, qs + 4 * j, 4);
      }
    }
  });
}

// One unit v of 16 rows: int2/3/4, 32 columns (block b of the row); int8, 16 columns
// (sub-block b). acc += the codes' sums · d · the activations' scale; xsum += Σx.
template <int Bits, int NT>
inline void accumulate_chunk(const uint8_t* v, int64_t b, __m512 d, const Q8RowView* xs, __m512* acc, float* xsum) {
  if constexpr (Bits == 8) {
    __m512i isum[NT];
    for (int n = 0; n < NT; ++n) isum[n] = _mm512_setzero_si512();
    for (int j = 0; j < 4; ++j) {
      const __m512i w = _mm512_loadu_si512(v + 64 * j);
      for (int n = 0; n < NT; ++n) {
        const Group4* g4 = reinterpret_cast<const Group4*>(xs[n].q + 16 * b);
        isum[n] = _mm512_dpbusd_epi32(isum[n], w, _mm512_set1_epi32(g4[j]));
      }
    }
    for (int n = 0; n < NT; ++n) {
      acc[n] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[n]), _mm512_mul_ps(d, _mm512_set1_ps(xs[n].d_lane[4 * b])), acc[n]);
      xsum[n] += xs[n].sum[b];
    }
  } else {
    __m512i lo[4], hi[4];
    if constexpr (Bits == 4) {
      const __m512i mask = _mm512_set1_epi8(0x0F);
      for (int j = 0; j < 4; ++j) {
        const __m512i w = _mm512_loadu_si512(v + 64 * j);
        lo[j] = _mm512_and_si512(w, mask), hi[j] = _mm512_and_si512(_mm512_srli_epi16(w, 4), mask);
      }
    } else {
      low_bit_codes<Bits>(v, lo, hi);
    }
    __m512i lo_sum[NT], hi_sum[NT];
    for (int n = 0; n < NT; ++n) lo_sum[n] = hi_sum[n] = _mm512_setzero_si512();
    for (int j = 0; j < 4; ++j) {
      for (int n = 0; n < NT; ++n) {
        const Group4* g4 = reinterpret_cast<const Group4*>(xs[n].q + 32 * b);
        lo_sum[n] = _mm512_dpbusd_epi32(lo_sum[n], lo[j], _mm512_set1_epi32(g4[j]));
        hi_sum[n] = _mm512_dpbusd_epi32(hi_sum[n], hi[j], _mm512_set1_epi32(g4[4 + j]));
      }
    }
    for (int n = 0; n < NT; ++n) {
      const float* dl = xs[n].d_lane + 8 * b;  // sub-block 2b at lane 8b, 2b+1 at 8b+4
      acc[n] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(lo_sum[n]), _mm512_mul_ps(d, _mm512_set1_ps(dl[0])), acc[n]);
      acc[n] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(hi_sum[n]), _mm512_mul_ps(d, _mm512_set1_ps(dl[4])), acc[n]);
      xsum[n] += xs[n].sum[2 * b] + xs[n].sum[2 * b + 1];
    }
  }
}

template <int Bits, int G, bool Sym, int NT>
void dot_group(const uint8_t* packed, int64_t group, int64_t cols, const Q8RowView* xs, float* y) {
  using L = Layout<Bits, G, Sym>;
  const int64_t units = L::group_cols(cols) / L::kUnitCols;  // code units per column group
  const int64_t ng = cols / L::group_cols(cols), group_bytes = L::packed(cols);
  const uint8_t* p = packed + group * ng * group_bytes;
  __m512 acc[NT], bias[NT];
  for (int n = 0; n < NT; ++n) acc[n] = bias[n] = _mm512_setzero_ps();
  for (int64_t gi = 0; gi < ng; ++gi, p += group_bytes) {
    prefetch_ahead<64>(p);
    const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    const __m512 dz = Sym ? _mm512_mul_ps(d, _mm512_set1_ps(L::kSymZero))
                          : _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 32)))));
    float xsum[NT] = {};
    for (int64_t c = 0; c < units; ++c) {
      const uint8_t* v = p + L::kCodesAt + L::kUnitBytes * c;
      prefetch_ahead<L::kUnitBytes>(v);
      accumulate_chunk<Bits, NT>(v, gi * units + c, d, xs, acc, xsum);
    }
    for (int n = 0; n < NT; ++n) bias[n] = _mm512_fmadd_ps(dz, _mm512_set1_ps(xsum[n]), bias[n]);
  }
  for (int n = 0; n < NT; ++n) _mm512_storeu_ps(y + 16 * n, _mm512_sub_ps(acc[n], bias[n]));
}

template <int Bits, int G, bool Sym>
void dot(const uint8_t* packed, int64_t group, int64_t cols, const Q8RowView* xs, int nt, float* y) {
  with_nt(nt, [&](auto n) { dot_group<Bits, G, Sym, decltype(n)::value>(packed, group, cols, xs, y); });
}

template <int Bits, int G, bool Sym>
constexpr RepackKernels kernels_for(std::string_view format) {
  return {format, &packed_bytes_of<Bits, G, Sym>, &repack<Bits, G, Sym>, &dot<Bits, G, Sym>, G == 0 ? Layout<Bits, G, Sym>::kUnitCols : 1};
}

}  // namespace

// Every int format's layout, bits 2/3/4/8 x groups 32/64/128/row x sym/asym.
std::span<const RepackKernels> int_affine_repacks() {
  static const RepackKernels table[] = {
      kernels_for<2, 32, true>("int2_g32_sym"),
      kernels_for<2, 32, false>("int2_g32_asym"),
      kernels_for<2, 64, true>("int2_g64_sym"),
      kernels_for<2, 64, false>("int2_g64_asym"),
      kernels_for<2, 128, true>("int2_g128_sym"),
      kernels_for<2, 128, false>("int2_g128_asym"),
      kernels_for<3, 32, true>("int3_g32_sym"),
      kernels_for<3, 32, false>("int3_g32_asym"),
      kernels_for<3, 64, true>("int3_g64_sym"),
      kernels_for<3, 64, false>("int3_g64_asym"),
      kernels_for<3, 128, true>("int3_g128_sym"),
      kernels_for<3, 128, false>("int3_g128_asym"),
      kernels_for<2, 0, true>("int2_pc_sym"),
      kernels_for<2, 0, false>("int2_pc_asym"),
      kernels_for<3, 0, true>("int3_pc_sym"),
      kernels_for<3, 0, false>("int3_pc_asym"),
      kernels_for<4, 0, true>("int4_pc_sym"),
      kernels_for<4, 0, false>("int4_pc_asym"),
      kernels_for<8, 0, true>("int8_pc_sym"),
      kernels_for<8, 0, false>("int8_pc_asym"),
      kernels_for<4, 32, true>("int4_g32_sym"),
      kernels_for<4, 32, false>("int4_g32_asym"),
      kernels_for<4, 64, true>("int4_g64_sym"),
      kernels_for<4, 64, false>("int4_g64_asym"),
      kernels_for<4, 128, true>("int4_g128_sym"),
      kernels_for<4, 128, false>("int4_g128_asym"),
      kernels_for<8, 32, true>("int8_g32_sym"),
      kernels_for<8, 32, false>("int8_g32_asym"),
      kernels_for<8, 64, true>("int8_g64_sym"),
      kernels_for<8, 64, false>("int8_g64_asym"),
      kernels_for<8, 128, true>("int8_g128_sym"),
      kernels_for<8, 128, false>("int8_g128_asym"),
  };
  return table;
}

}  // namespace lowbit::kernels
