// Shared plumbing of the AVX-512 repacked layouts (repack_*_avx512.cpp): the group size,
// the prefetch distance, the repacking loop over (group, block, row) and the packed size.
// Only included by files compiled with the AVX-512 flags.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "lowbit/kernels.h"

namespace lowbit::kernels::avx512 {

inline constexpr int64_t kGroup = 16;  // rows per group, one per 32-bit lane
// Software prefetch of the weight stream, two distances: into L1 8 KiB ahead and into L2
// 32 KiB ahead. Measured on one decode step's q4_0 matrices of the 1.1B shape
// (bench_kernels repacked_decode_1.1b, fraction of the read bandwidth, 1 / 2 threads):
// L1 only, 8 KiB ahead 82% / 80%; L2 only, 8 KiB 94% / 89%; L1 4 KiB + L2 32 KiB 93-99% /
// 94-95%; L1 4 KiB + L2 64 KiB 99% / 93%; none 63% / 86%. (L1 only on one 768 MB matrix:
// 1 KiB 74%, 8 KiB 84%, 16 KiB 83%, 32 KiB 67%.) L1 8 KiB against 4 KiB (both with L2 at
// 32 KiB; two alternating runs, 1 thread, GB/s): q4_0 15.4-16.1 / 15.1-15.6, q4_k
// 14.5-15.0 / 14.3-14.4, q6_k 14.9-15.1 / 14.8-14.9, iq4_xs 14.8-14.9 / 13.7-13.9.
// An L1 prefetch holds one of the core's few fill buffers until DRAM answers; the far L2
// prefetch lets those be served from L2.
inline constexpr int kPrefetchL1Bytes = 8192, kPrefetchL2Bytes = 32768;

// Prefetch the Bytes bytes (a multiple of 64) that lie the two distances ahead of p.
template <int Bytes>
inline void prefetch_ahead(const uint8_t* p) {
  const char* c = reinterpret_cast<const char*>(p);
  for (int k = 0; k < Bytes; k += 64) {
    _mm_prefetch(c + kPrefetchL1Bytes + k, _MM_HINT_T0);
    _mm_prefetch(c + kPrefetchL2Bytes + k, _MM_HINT_T1);
  }
}

// Four int8 codes read as one 32-bit value (may alias the int8 array, any alignment).
typedef int32_t Group4 __attribute__((may_alias, aligned(1)));

// Bytes of a tensor packed as groups of 16 rows x blocks of BlockCols columns, Packed
// bytes each.
template <int64_t BlockCols, int64_t Packed>
uint64_t packed_bytes(int64_t rows, int64_t cols) {
  return static_cast<uint64_t>((rows + kGroup - 1) / kGroup) * static_cast<uint64_t>(cols / BlockCols) * Packed;
}

// For every group and block: the Packed bytes at dst filled with `pad` (rows past the end
// stay so), then fill(dst, block_bytes_of_row_r, r) for each real row r.
template <int64_t BlockCols, int64_t BlockBytes, int64_t Packed, typename Fill>
void repack_rows(const uint8_t* data, int64_t rows, int64_t cols, uint8_t* out, uint8_t pad, Fill fill) {
  const int64_t nb = cols / BlockCols, groups = (rows + kGroup - 1) / kGroup;
#pragma omp parallel for schedule(static) if (rows * cols >= (1 << 20))
  for (int64_t g = 0; g < groups; ++g) {
    for (int64_t b = 0; b < nb; ++b) {
      uint8_t* dst = out + (g * nb + b) * Packed;
      std::memset(dst, pad, Packed);
      for (int64_t r = 0; r < kGroup && g * kGroup + r < rows; ++r) fill(dst, data + ((g * kGroup + r) * nb + b) * BlockBytes, static_cast<int>(r));
    }
  }
}

}  // namespace lowbit::kernels::avx512
