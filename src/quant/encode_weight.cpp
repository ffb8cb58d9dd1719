// Streaming weight encoder (encode_weight.h).
#include "quant/encode_weight.h"

#include <algorithm>
#include <exception>
#include <limits>

#include "lowbit/kernels.h"

namespace lowbit {
namespace {

constexpr int64_t kChunkFloats = 1 << 16;  // 256 KiB of decoded rows per chunk: inside L2

// Rows [r0, r1) of the output, decoded into x: ((r1 - r0) × w.cols).
void decode_rows(const Weight& w, std::span<const int64_t> order, int64_t r0, int64_t r1, float* x) {
  if (order.empty()) {
    w.format->dequantize(w.data.data(), w.rows, w.cols, r0, r1, x);
    return;
  }
  for (int64_t r = r0; r < r1; ++r) {
    w.format->dequantize(w.data.data(), w.rows, w.cols, order[r], order[r] + 1, x + (r - r0) * w.cols);
  }
}

}  // namespace

void encode_rows(const Format& format, const float* x, int64_t rows, int64_t cols, const float* importance, uint8_t* out,
                 int64_t first_row) {
  const EncodeRowsFn fast = importance == nullptr ? weight_kernels(format).encode : nullptr;
  if (fast == nullptr || !format_fits(format, cols)) {  // (quantize_into reports the shape)
    quantize_into(format, x, rows, cols, importance, out, first_row);
    return;
  }
  check_quantize_input(format, x, rows, cols, first_row);
  fast(x, rows, cols, out);
}

std::vector<uint8_t> encode_weight(const Weight& w, const Format& format, std::span<const int64_t> order,
                                   const float* importance) {
  if (!format.row_local || !format_fits(format, w.cols)) {  // whole-tensor formats (and the shape error)
    std::vector<float> x(static_cast<size_t>(w.numel()));
    decode_rows(w, order, 0, w.rows, x.data());
    return quantize_tensor(format, x, w.rows, w.cols, importance);
  }
  const uint64_t row_bytes = format_row_bytes(format, w.cols);
  std::vector<uint8_t> out(format.tensor_bytes(w.rows, w.cols));
  const int64_t chunk = std::max<int64_t>(1, kChunkFloats / w.cols);
  const int64_t chunks = (w.rows + chunk - 1) / chunk;
  // The error of the lowest failing chunk, so the message does not depend on scheduling.
  int64_t failed_chunk = std::numeric_limits<int64_t>::max();
  std::exception_ptr failure;
#pragma omp parallel if (chunks > 1)
  {
    std::vector<float> x(static_cast<size_t>(chunk * w.cols));
#pragma omp for schedule(dynamic, 1)
    for (int64_t c = 0; c < chunks; ++c) {
      const int64_t r0 = c * chunk, r1 = std::min(w.rows, r0 + chunk);
      try {
        decode_rows(w, order, r0, r1, x.data());
        encode_rows(format, x.data(), r1 - r0, w.cols, importance, out.data() + r0 * row_bytes, r0);
      } catch (...) {
#pragma omp critical(encode_weight_failure)
        if (c < failed_chunk) {
          failed_chunk = c;
          failure = std::current_exception();
        }
      }
    }
  }
  if (failure) std::rethrow_exception(failure);
  return out;
}

}  // namespace lowbit
