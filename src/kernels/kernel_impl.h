// Internal plumbing of the kernel table: each instruction set's kernels and its fused
// decode kernels, and the scalar unpackers. Not part of the public API (lowbit/kernels.h).
#pragma once

#include <span>
#include <string_view>
#include <type_traits>

#include "lowbit/kernels.h"

namespace lowbit::kernels {

// Calls f(std::integral_constant<int, NT>{}) for NT = nt (1..4): kernels templated on the
// token count keep their accumulators in registers.
template <typename F>
void with_nt(int nt, F&& f) {
  switch (nt) {
    case 1: return f(std::integral_constant<int, 1>{});
    case 2: return f(std::integral_constant<int, 2>{});
    case 3: return f(std::integral_constant<int, 3>{});
    default: return f(std::integral_constant<int, 4>{});
  }
}

struct FusedEntry {
  std::string_view format;
  FusedDotFn fn;
};
struct FusedF32Entry {
  std::string_view format;
  FusedF32Fn fn;
  ArrangeF32Fn arrange = nullptr;  // null: the activations in their own order
};
struct EncodeEntry {
  std::string_view format;
  EncodeRowsFn fn;
};
struct UnpackEntry {
  std::string_view format;
  UnpackU8Fn fn;
};

// One per instruction set; the fused list may be empty.
struct IsaEntry {
  const IsaKernels* isa;
  std::span<const FusedEntry> fused;
  std::span<const FusedF32Entry> fused_f32;
  std::span<const RepackKernels> repacks;
  std::span<const EncodeEntry> encoders;
  bool (*supported)();  // the CPU can run it
};

const IsaEntry& ref_isa();
const IsaEntry& avx2_isa();
// Its tables are built by AVX-512 code, so only where the CPU runs it (isa_entries.cpp,
// compiled for the baseline): elsewhere the entry has the kernels' names and no tables.
const IsaEntry& avx512_isa();
// The AVX-512 instruction set's entry points and tables (avx512/*.cpp, compiled for it).
extern const IsaKernels kAvx512Kernels;
std::span<const FusedEntry> avx512_fused_kernels();
std::span<const FusedF32Entry> avx512_fused_f32_kernels();
std::span<const EncodeEntry> avx512_encoders();
std::span<const RepackKernels> avx512_repacks();

// AVX-512 elementwise kernels (avx512/activation_avx512.cpp).
void swiglu_avx512(float* gate, const float* up, int64_t n);
void softmax_avx512(float* x, int64_t n);
void dot_rows_avx512(const float* x, int64_t xs, int nq, const float* rows, int64_t stride, int64_t n_rows, int64_t n,
                     float* out, int64_t os);
void rope_avx512(float* x, int64_t n_heads, int64_t head_dim, bool adjacent_pairs, const float* cos, const float* sin);
void weighted_sum_avx512(const float* w, int64_t ws, int nq, const float* rows, int64_t stride, int64_t n_rows, int64_t n,
                         float* out, int64_t os);
// The W8A8 tile (avx512/w8a8_avx512.cpp).
void w8a8_tile_avx512(const uint8_t* xs, int nt, const uint8_t* panel, int nr, int64_t cols, float* y, int64_t ldy);

// The formats with an int8 path, each with its scalar unpacker (ref/unpack_u8.cpp, and
// ref/unpack_int_affine.cpp for the intN family).
std::span<const UnpackEntry> unpack_table();

// Kernels shared by the SIMD sets for the parts of a row they do not fuse: the scalar
// unpack of blocks [first_elem, cols) followed by the set's dot_u8_q8 on that range.
// row: the whole row's bytes; first_elem: a multiple of 64 where a block starts.
void dot_tail(const IsaKernels& isa, UnpackU8Fn unpack, const uint8_t* row_at_first, int64_t first_elem,
              int64_t cols, const Q8RowView* xs, int nt, float* y);

}  // namespace lowbit::kernels
