// intN group-wise affine formats, the layout GPTQ and AWQ produce: per group of G input
// elements an fp16 scale, an integer zero point (asymmetric only; symmetric groups use the
// fixed zero 2^(N-1)) and N-bit levels; value = scale * (q - zero).
//   block (per group):  f16 scale | u8 zero (asym) | G*N bits, little-endian bit stream
//   per-channel ("pc"): one group per row (block_size kPerRow)
// Names: int{2,3,4,8}_{g32,g64,g128,pc}_{sym,asym}. The quantizer is GPTQ's min/max RTN
// (quant.py): range includes 0, all-zero groups get [-1, 1].
#include <array>
#include <cmath>
#include <string>

#include "formats/format_impl.h"
#include "formats/formats.h"
#include "formats/part_packing.h"

namespace lowbit::formats {
namespace {

template <int Bits, bool Sym>
struct AffineGroup {
  static constexpr int kMaxq = (1 << Bits) - 1;
  static constexpr int kHeader = Sym ? 2 : 3;

  static uint64_t code_bytes(int64_t n) { return (static_cast<uint64_t>(n) * Bits + 7) / 8; }

  // Quantizes one group of n values into header + bit stream at out.
  // Asymmetric: GPTQ's min/max quantizer (the range includes 0; an all-zero group gets
  // [-1, 1]). Symmetric: levels -2^(N-1) .. 2^(N-1)-1 around the fixed zero 2^(N-1); the
  // scale maps the element of largest magnitude exactly onto the end of the range on its
  // own side (amax / 2^(N-1) when it is negative, amax / (2^(N-1)-1) when positive).
  // GPTQ's symmetric rule instead clips an all-positive group at half its range; see
  // docs/FORMATS.md.
  static void encode(const float* x, int64_t n, uint8_t* out) {
    uint16_t scale_h;
    int zero;
    if (Sym) {
      float amax = 0, max = 0;
      for (int64_t i = 0; i < n; ++i) {
        if (std::fabs(x[i]) > amax) {
          amax = std::fabs(x[i]);
          max = x[i];
        }
      }
      zero = (kMaxq + 1) / 2;
      scale_h = f2h(amax == 0 ? 1.0f : amax / static_cast<float>(max < 0 ? zero : zero - 1));
    } else {
      float xmin = 0, xmax = 0;
      for (int64_t i = 0; i < n; ++i) {
        xmin = std::min(xmin, x[i]);
        xmax = std::max(xmax, x[i]);
      }
      if (xmin == 0 && xmax == 0) {
        xmin = -1;
        xmax = 1;
      }
      scale_h = f2h((xmax - xmin) / kMaxq);
      const float s = h2f(scale_h);
      zero = s > 0 ? std::clamp(static_cast<int>(std::nearbyint(-xmin / s)), 0, kMaxq) : 0;
    }
    const float scale = h2f(scale_h);
    std::memcpy(out, &scale_h, 2);
    if (!Sym) out[2] = static_cast<uint8_t>(zero);
    uint8_t* codes = out + kHeader;
    std::memset(codes, 0, code_bytes(n));
    const float inv = scale > 0 ? 1.0f / scale : 0.0f;
    for (int64_t i = 0; i < n; ++i) {
      const int q = std::clamp(static_cast<int>(std::nearbyint(x[i] * inv)) + zero, 0, kMaxq);
      const uint64_t bit = static_cast<uint64_t>(i) * Bits;
      const uint32_t v = static_cast<uint32_t>(q) << (bit % 8);
      codes[bit / 8] = static_cast<uint8_t>(codes[bit / 8] | v);
      if ((bit % 8) + Bits > 8) codes[bit / 8 + 1] = static_cast<uint8_t>(codes[bit / 8 + 1] | (v >> 8));
    }
  }

  // Fit/round: the parameters come from encode; the rounding rule is encode's.
  static void fit(const float* x, int64_t n, const float*, float, uint8_t* block, float*) { encode(x, n, block); }

  static float round(uint8_t* block, const float*, int64_t, int64_t i, float x) {
    uint16_t scale_h;
    std::memcpy(&scale_h, block, 2);
    const float scale = h2f(scale_h);
    const int zero = Sym ? (kMaxq + 1) / 2 : block[2];
    const float inv = scale > 0 ? 1.0f / scale : 0.0f;
    // Clamped in float first: error feedback may push x far outside the group's range.
    const float level = std::clamp(std::nearbyint(x * inv), static_cast<float>(-zero), static_cast<float>(kMaxq - zero));
    const int q = static_cast<int>(level) + zero;
    uint8_t* codes = block + kHeader;
    const uint64_t bit = static_cast<uint64_t>(i) * Bits;
    const uint32_t mask = static_cast<uint32_t>(kMaxq) << (bit % 8), v = static_cast<uint32_t>(q) << (bit % 8);
    codes[bit / 8] = static_cast<uint8_t>((codes[bit / 8] & ~mask) | v);
    if ((bit % 8) + Bits > 8) codes[bit / 8 + 1] = static_cast<uint8_t>((codes[bit / 8 + 1] & ~(mask >> 8)) | (v >> 8));
    return scale * static_cast<float>(q - zero);
  }

  static void decode(const uint8_t* in, int64_t n, float* y) {
    uint16_t scale_h;
    std::memcpy(&scale_h, in, 2);
    const float scale = h2f(scale_h);
    const int zero = Sym ? (kMaxq + 1) / 2 : in[2];
    const uint8_t* codes = in + kHeader;
    for (int64_t i = 0; i < n; ++i) {
      const uint64_t bit = static_cast<uint64_t>(i) * Bits;
      uint32_t v = codes[bit / 8] >> (bit % 8);
      if ((bit % 8) + Bits > 8) v |= static_cast<uint32_t>(codes[bit / 8 + 1]) << (8 - bit % 8);
      y[i] = scale * static_cast<float>(static_cast<int>(v & kMaxq) - zero);
    }
  }
};

template <int Bits, int Group, bool Sym>
struct AffineFormat {
  using G = AffineGroup<Bits, Sym>;
  static constexpr bool kPerChannel = Group == 0;
  static constexpr int64_t kGroupBytes = kPerChannel ? 0 : G::kHeader + Group * Bits / 8;

  static uint64_t row_bytes(int64_t n) {
    if (kPerChannel) return G::kHeader + G::code_bytes(n);
    return static_cast<uint64_t>(n / Group) * kGroupBytes;
  }
  static void quantize_row(const float* x, const float*, int64_t n, uint8_t* out) {
    if (kPerChannel) return G::encode(x, n, out);
    for (int64_t g = 0; g < n / Group; ++g) G::encode(x + g * Group, Group, out + g * kGroupBytes);
  }
  static void dequantize_row(const uint8_t* in, int64_t n, float* out) {
    if (kPerChannel) return G::decode(in, n, out);
    for (int64_t g = 0; g < n / Group; ++g) G::decode(in + g * kGroupBytes, Group, out + g * Group);
  }

  static constexpr FitRound kFitRound{0, &G::fit, &G::round};

  static Format make(std::string_view name, Tolerance tol, std::string_view description) {
    return Format{
        .name = name,
        .gguf_type = kNotGguf,
        .kind = FormatKind::kAffineInt,
        .block_size = kPerChannel ? kPerRow : Group,
        .block_bytes = kPerChannel ? G::kHeader : kGroupBytes,
        .bits_per_weight = 8.0 * row_bytes(4096) / 4096,
        .uses_importance = false,
        .max_abs_input = kFp16Max,  // fp16 scale
        .row_local = true,
        .tolerance = tol,
        .description = description,
        .tensor_bytes = &rows_times_row_bytes<row_bytes>,
        .quantize = &quantize_rows<quantize_row, row_bytes>,
        .dequantize = &dequantize_rows<dequantize_row, row_bytes>,
        .fit_round = &kFitRound,
    };
  }
};

// Names and descriptions live as long as the table.
struct NameStore {
  std::array<std::string, 64> names, descriptions;
  int used = 0;
};

// Round-trip tolerances: 1.3x the relative RMSE measured on N(0, 0.02) rows and 1.6x that
// on Student-t(3) rows (4096 columns), indexed [bits][g32, g64, g128, pc][sym, asym].
Tolerance tolerance_for(int bits, int group, bool sym) {
  struct Measured {
    double gaussian[4][2];
    double heavy_tailed[4][2];
  };
  static constexpr Measured k2{{{0.525, 0.404}, {0.568, 0.453}, {0.628, 0.498}, {0.739, 0.660}},
                               {{0.509, 0.415}, {0.567, 0.493}, {0.639, 0.569}, {0.878, 0.863}}};
  static constexpr Measured k3{{{0.199, 0.172}, {0.220, 0.193}, {0.241, 0.213}, {0.314, 0.288}},
                               {{0.265, 0.204}, {0.322, 0.256}, {0.393, 0.318}, {0.770, 0.726}}};
  static constexpr Measured k4{{{0.091, 0.081}, {0.100, 0.091}, {0.109, 0.100}, {0.142, 0.135}},
                               {{0.134, 0.101}, {0.168, 0.127}, {0.214, 0.163}, {0.591, 0.518}}};
  static constexpr Measured k8{{{0.0053, 0.0047}, {0.0059, 0.0053}, {0.0063, 0.0059}, {0.0083, 0.0079}},
                               {{0.0088, 0.0060}, {0.0114, 0.0076}, {0.0148, 0.0100}, {0.0559, 0.0390}}};
  const Measured& m = bits == 2 ? k2 : bits == 3 ? k3 : bits == 4 ? k4 : k8;
  const int g = group == 32 ? 0 : group == 64 ? 1 : group == 128 ? 2 : 3;
  const int s = sym ? 0 : 1;
  return {1.3 * m.gaussian[g][s], 1.6 * m.heavy_tailed[g][s], bits == 2 ? 0.4 : 0.02};
}

template <int Bits, int Group, bool Sym>
void add(std::vector<Format>& out, NameStore& store) {
  const std::string group = Group == 0 ? "pc" : "g" + std::to_string(Group);
  const std::string sym = Sym ? "sym" : "asym";
  auto& name = store.names[store.used];
  auto& desc = store.descriptions[store.used++];
  name = "int" + std::to_string(Bits) + "_" + group + "_" + sym;
  desc = std::to_string(Bits) + "-bit " + (Sym ? "symmetric" : "asymmetric") + ", " +
         (Group == 0 ? std::string("one group per row") : "groups of " + std::to_string(Group)) +
         ", fp16 scale" + (Sym ? "" : " + u8 zero") + " (GPTQ/AWQ layout)";
  out.push_back(AffineFormat<Bits, Group, Sym>::make(name, tolerance_for(Bits, Group, Sym), desc));
}

template <int Bits>
void add_bits(std::vector<Format>& out, NameStore& store) {
  add<Bits, 32, true>(out, store);
  add<Bits, 32, false>(out, store);
  add<Bits, 64, true>(out, store);
  add<Bits, 64, false>(out, store);
  add<Bits, 128, true>(out, store);
  add<Bits, 128, false>(out, store);
  add<Bits, 0, true>(out, store);
  add<Bits, 0, false>(out, store);
}

}  // namespace

std::vector<Format> affine_int_formats() {
  static const std::vector<Format> formats = [] {
    static NameStore store;
    std::vector<Format> out;
    add_bits<2>(out, store);
    add_bits<3>(out, store);
    add_bits<4>(out, store);
    add_bits<8>(out, store);
    return out;
  }();
  return formats;
}

void pack_affine_group(int bits, bool sym, uint16_t scale_f16, int zero, const uint8_t* codes, int64_t n, uint8_t* out) {
  const int header = sym ? 2 : 3;
  std::memcpy(out, &scale_f16, 2);
  if (!sym) out[2] = static_cast<uint8_t>(zero);
  uint8_t* stream = out + header;
  std::memset(stream, 0, (static_cast<uint64_t>(n) * bits + 7) / 8);
  for (int64_t i = 0; i < n; ++i) {  // the little-endian bit stream of decode()
    const uint64_t bit = static_cast<uint64_t>(i) * bits;
    const uint32_t v = static_cast<uint32_t>(codes[i]) << (bit % 8);
    stream[bit / 8] = static_cast<uint8_t>(stream[bit / 8] | v);
    if ((bit % 8) + bits > 8) stream[bit / 8 + 1] = static_cast<uint8_t>(stream[bit / 8 + 1] | (v >> 8));
  }
}

AffineGroupParts unpack_affine_group(int bits, bool sym, const uint8_t* group, int64_t n, uint8_t* codes) {
  AffineGroupParts p;
  std::memcpy(&p.scale_f16, group, 2);
  p.zero = sym ? 1 << (bits - 1) : group[2];
  const uint8_t* stream = group + (sym ? 2 : 3);
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t bit = static_cast<uint64_t>(i) * bits;
    uint32_t v = stream[bit / 8] >> (bit % 8);
    if ((bit % 8) + bits > 8) v |= static_cast<uint32_t>(stream[bit / 8 + 1]) << (8 - bit % 8);
    codes[i] = static_cast<uint8_t>(v & ((1u << bits) - 1));
  }
  return p;
}

}  // namespace lowbit::formats
