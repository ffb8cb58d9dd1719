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

namespace lowbit::formats {
namespace {

template <int Bits, bool Sym>
struct AffineGroup {
  static constexpr int kMaxq = (1 << Bits) - 1;
  static constexpr int kHeader = Sym ? 2 : 3;

  static uint64_t code_bytes(int64_t n) { return (static_cast<uint64_t>(n) * Bits + 7) / 8; }

  // Quantizes one group of n values into header + bit stream at out.
  static void encode(const float* x, int64_t n, uint8_t* out) {
    float xmin = 0, xmax = 0;
    for (int64_t i = 0; i < n; ++i) {
      xmin = std::min(xmin, x[i]);
      xmax = std::max(xmax, x[i]);
    }
    if (Sym) {
      xmax = std::max(-xmin, xmax);
      if (xmin < 0) xmin = -xmax;
    }
    if (xmin == 0 && xmax == 0) {
      xmin = -1;
      xmax = 1;
    }
    const uint16_t scale_h = f2h((xmax - xmin) / kMaxq);
    const float scale = h2f(scale_h);
    const int zero = Sym ? (kMaxq + 1) / 2
                         : std::clamp(static_cast<int>(std::nearbyint(-xmin / scale)), 0, kMaxq);
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

  static Format make(std::string_view name, Tolerance tol, std::string_view description) {
    return Format{
        .name = name,
        .gguf_type = kNotGguf,
        .kind = FormatKind::kAffineInt,
        .block_size = kPerChannel ? kPerRow : Group,
        .block_bytes = kPerChannel ? G::kHeader : kGroupBytes,
        .bits_per_weight = 8.0 * row_bytes(4096) / 4096,
        .uses_importance = false,
        .row_local = true,
        .tolerance = tol,
        .description = description,
        .tensor_bytes = &rows_times_row_bytes<row_bytes>,
        .quantize = &quantize_rows<quantize_row, row_bytes>,
        .dequantize = &dequantize_rows<dequantize_row, row_bytes>,
    };
  }
};

// Names and descriptions live as long as the table.
struct NameStore {
  std::array<std::string, 64> names, descriptions;
  int used = 0;
};

// Relative-RMSE tolerance of N-bit RTN on gaussian rows; the step halves per extra bit.
Tolerance tolerance_for(int bits, int group, bool sym) {
  static constexpr double kGaussian[9] = {0, 0, 0.65, 0.3, 0.15, 0, 0, 0, 0.012};
  const double per_channel_factor = group == 0 ? 2.0 : 1.0;
  const double sym_factor = sym ? 1.25 : 1.0;
  const double g = kGaussian[bits] * per_channel_factor * sym_factor;
  return {g, g * 1.5, bits == 2 ? 0.4 : 0.1};
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

}  // namespace lowbit::formats
