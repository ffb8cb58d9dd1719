// Scalar unpackers of the intN group-wise affine formats (GPTQ/AWQ layout, see
// src/formats/int_affine.cpp): per group an fp16 scale, a u8 zero (asymmetric) or the fixed
// zero 2^(N-1), and N-bit codes in a little-endian bit stream; value = scale * (q - zero),
// so u = q, a = scale, b = -scale * zero. One template for all 32 formats.
#include <cstring>
#include <string>
#include <vector>

#include "formats/format_impl.h"
#include "kernels/kernel_impl.h"

namespace lowbit::kernels {
namespace {

template <int Bits, int Group, bool Sym>
void unpack(const uint8_t* row, int64_t cols, uint8_t* u, float* a, float* b) {
  constexpr int kHeader = Sym ? 2 : 3, kMaxq = (1 << Bits) - 1;
  const int64_t group = Group == 0 ? cols : Group;  // 0: one group per row
  const int64_t group_bytes = kHeader + (group * Bits + 7) / 8;
  const int64_t padded = q8_padded(cols);
  for (int64_t g = 0; g < cols / group; ++g) {
    const uint8_t* in = row + g * group_bytes;
    uint16_t scale_h;
    std::memcpy(&scale_h, in, 2);
    const float scale = formats::h2f(scale_h);
    const int zero = Sym ? (kMaxq + 1) / 2 : in[2];
    const uint8_t* codes = in + kHeader;
    for (int64_t i = 0; i < group; ++i) {
      const uint64_t bit = static_cast<uint64_t>(i) * Bits;
      uint32_t v = codes[bit / 8] >> (bit % 8);
      if ((bit % 8) + Bits > 8) v |= static_cast<uint32_t>(codes[bit / 8 + 1]) << (8 - bit % 8);
      u[g * group + i] = static_cast<uint8_t>(v & kMaxq);
    }
    // Sub-blocks of this group; a per-row group may end inside a sub-block.
    for (int64_t s = g * group / kQ8Sub; s < ((g + 1) * group + kQ8Sub - 1) / kQ8Sub; ++s) {
      a[s] = scale;
      b[s] = -scale * static_cast<float>(zero);
    }
  }
  std::memset(u + cols, 0, static_cast<size_t>(padded - cols));
  for (int64_t s = (cols + kQ8Sub - 1) / kQ8Sub; s < padded / kQ8Sub; ++s) a[s] = b[s] = 0.0f;
}

template <int Bits>
void add_bits(std::vector<UnpackEntry>& out) {
  auto add = [&](const std::string& name, UnpackU8Fn fn) { out.push_back({format_by_name(name).name, fn}); };
  const std::string n = "int" + std::to_string(Bits);
  add(n + "_g32_sym", &unpack<Bits, 32, true>);
  add(n + "_g32_asym", &unpack<Bits, 32, false>);
  add(n + "_g64_sym", &unpack<Bits, 64, true>);
  add(n + "_g64_asym", &unpack<Bits, 64, false>);
  add(n + "_g128_sym", &unpack<Bits, 128, true>);
  add(n + "_g128_asym", &unpack<Bits, 128, false>);
  add(n + "_pc_sym", &unpack<Bits, 0, true>);
  add(n + "_pc_asym", &unpack<Bits, 0, false>);
}

}  // namespace

std::vector<UnpackEntry> int_affine_unpackers() {
  std::vector<UnpackEntry> out;
  add_bits<2>(out);
  add_bits<3>(out);
  add_bits<4>(out);
  add_bits<8>(out);
  return out;
}

}  // namespace lowbit::kernels
