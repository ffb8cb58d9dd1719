// bitsandbytes-style 4-bit formats: blocks of 64, fp32 absmax per block, each weight the
// nearest of 16 code values (NF4 or bnb's FP4) times absmax. Two elements per byte, the
// first in the high nibble (bnb's packing).
//   nf4, fp4:        row-local, block = {f32 absmax, 32 code bytes} (4.5 bpw)
//   nf4_dq, fp4_dq:  QLoRA double quantization: the absmax values, minus their mean, are
//                    quantized to 8 bits with bnb's signed dynamic map in groups of 256
//                    blocks, each group with an fp32 scale (about 4.127 bpw). Tensor-level:
//                    [codes: numel/2][qabsmax: nblocks][group scales: f32 x ngroups][mean: f32]
#include "formats/nf4_fp4_codes.h"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cmath>
#include <limits>

#include "formats/format_impl.h"
#include "formats/formats.h"
#include "formats/part_packing.h"

namespace lowbit::formats {
namespace {

constexpr int kBlock = 64;
constexpr int kDqGroup = 256;  // absmax values per double-quantization group

struct BlockBnb4 {
  float absmax;              // fp32 block absmax; value = code[q] * absmax
  uint8_t qs[kBlock / 2];    // byte j: element 2j (high nibble), element 2j+1 (low nibble)
};
static_assert(sizeof(BlockBnb4) == 36, "bnb 4-bit block is 36 bytes (4.5 bpw)");

int nearest_code(const float* code, float v) {
  int best = 0;
  float best_err = std::fabs(code[0] - v);
  for (int i = 1; i < 16; ++i) {
    const float err = std::fabs(code[i] - v);
    if (err < best_err) {
      best = i;
      best_err = err;
    }
  }
  return best;
}

void encode_block(const float* code, const float* x, float absmax, uint8_t* qs) {
  const float inv = absmax > 0 ? 1.0f / absmax : 0.0f;
  for (int j = 0; j < kBlock / 2; ++j) {
    qs[j] = static_cast<uint8_t>((nearest_code(code, x[2 * j] * inv) << 4) |
                                 nearest_code(code, x[2 * j + 1] * inv));
  }
}

void decode_block(const float* code, const uint8_t* qs, float absmax, float* y) {
  for (int j = 0; j < kBlock / 2; ++j) {
    y[2 * j] = code[qs[j] >> 4] * absmax;
    y[2 * j + 1] = code[qs[j] & 0xF] * absmax;
  }
}

float block_absmax(const float* x) {
  float amax = 0;
  for (int j = 0; j < kBlock; ++j) amax = std::max(amax, std::fabs(x[j]));
  return amax;
}

template <const float* Code>
void quantize_row(const float* x, const float*, int64_t n, uint8_t* out) {
  for (int64_t ib = 0; ib < n / kBlock; ++ib) {
    BlockBnb4 b{};
    b.absmax = block_absmax(x + ib * kBlock);
    encode_block(Code, x + ib * kBlock, b.absmax, b.qs);
    store_block(b, out + ib * sizeof(BlockBnb4));
  }
}

template <const float* Code>
void dequantize_row(const uint8_t* in, int64_t n, float* out) {
  for (int64_t ib = 0; ib < n / kBlock; ++ib) {
    const auto b = load_block<BlockBnb4>(in + ib * sizeof(BlockBnb4));
    decode_block(Code, b.qs, b.absmax, out + ib * kBlock);
  }
}

// Fit: absmax and codes as quantize makes them. Round: the code nearest x/absmax.
template <const float* Code>
void fit(const float* x, int64_t, const float*, float, uint8_t* block, float*) {
  quantize_row<Code>(x, nullptr, kBlock, block);
}

template <const float* Code>
float round(uint8_t* block, const float*, int64_t, int64_t i, float x) {
  float absmax;
  std::memcpy(&absmax, block + offsetof(BlockBnb4, absmax), 4);
  const float inv = absmax > 0 ? 1.0f / absmax : 0.0f;
  uint8_t* q = block + offsetof(BlockBnb4, qs) + i / 2;
  const int shift = i % 2 == 0 ? 4 : 0;  // the first element of a byte is the high nibble
  set_bits(q, shift, 4, nearest_code(Code, x * inv));
  return Code[get_bits(q, shift, 4)] * absmax;
}

template <const float* Code>
constexpr FitRound kFitRound{0, &fit<Code>, &round<Code>};

// ---- double quantization (tensor-level layout) ----

struct DqLayout {
  uint64_t numel, nblocks, ngroups;
  uint64_t codes_offset() const { return 0; }
  uint64_t qabsmax_offset() const { return numel / 2; }
  uint64_t group_scale_offset() const { return qabsmax_offset() + nblocks; }
  uint64_t mean_offset() const { return group_scale_offset() + 4 * ngroups; }
  uint64_t total() const { return mean_offset() + 4; }
};

DqLayout dq_layout(int64_t rows, int64_t cols) {
  const uint64_t numel = checked_mul(static_cast<uint64_t>(rows), static_cast<uint64_t>(cols), "element count");
  const uint64_t nblocks = numel / kBlock;
  return {numel, nblocks, (nblocks + kDqGroup - 1) / kDqGroup};
}

uint64_t dq_tensor_bytes(int64_t rows, int64_t cols) { return dq_layout(rows, cols).total(); }

float load_f32(const uint8_t* p) {
  float v;
  std::memcpy(&v, p, 4);
  return v;
}

float dq_absmax(const uint8_t* data, const DqLayout& l, uint64_t block) {
  const float* dyn = bnb_dynamic_map();
  const float mean = load_f32(data + l.mean_offset());
  const float group_scale = load_f32(data + l.group_scale_offset() + 4 * (block / kDqGroup));
  return dyn[data[l.qabsmax_offset() + block]] * group_scale + mean;
}

template <const float* Code>
void quantize_dq(const float* x, int64_t rows, int64_t cols, const float*, uint8_t* out) {
  const DqLayout l = dq_layout(rows, cols);
  std::vector<float> absmax(l.nblocks);
  double sum = 0;
  for (uint64_t b = 0; b < l.nblocks; ++b) {
    absmax[b] = block_absmax(x + b * kBlock);
    sum += absmax[b];
  }
  const float mean = l.nblocks ? static_cast<float>(sum / l.nblocks) : 0.0f;
  std::memcpy(out + l.mean_offset(), &mean, 4);
  const float* dyn = bnb_dynamic_map();
  for (uint64_t g = 0; g < l.ngroups; ++g) {
    const uint64_t begin = g * kDqGroup, end = std::min<uint64_t>(l.nblocks, begin + kDqGroup);
    float gmax = 0;
    for (uint64_t b = begin; b < end; ++b) gmax = std::max(gmax, std::fabs(absmax[b] - mean));
    std::memcpy(out + l.group_scale_offset() + 4 * g, &gmax, 4);
    const float inv = gmax > 0 ? 1.0f / gmax : 0.0f;
    for (uint64_t b = begin; b < end; ++b) {
      out[l.qabsmax_offset() + b] = static_cast<uint8_t>(nearest_dynamic_code(dyn, (absmax[b] - mean) * inv));
    }
  }
  // Codes are chosen against the absmax the decoder will see (after double quantization).
#pragma omp parallel for schedule(static) if (l.nblocks >= 1024)
  for (int64_t b = 0; b < static_cast<int64_t>(l.nblocks); ++b) {
    const float a = dq_absmax(out, l, static_cast<uint64_t>(b));
    encode_block(Code, x + b * kBlock, a, out + l.codes_offset() + b * (kBlock / 2));
  }
}

template <const float* Code>
void dequantize_dq(const uint8_t* data, int64_t rows, int64_t cols, int64_t row_begin,
                   int64_t row_end, float* out) {
  const DqLayout l = dq_layout(rows, cols);
  const uint64_t first = static_cast<uint64_t>(row_begin) * cols / kBlock;
  const uint64_t last = static_cast<uint64_t>(row_end) * cols / kBlock;
  for (uint64_t b = first; b < last; ++b) {
    decode_block(Code, data + l.codes_offset() + b * (kBlock / 2), dq_absmax(data, l, b),
                 out + (b - first) * kBlock);
  }
}

// The plain format's bytes: block b = {f32 absmax as the decoder sees it, its 32 code
// bytes} (the codes are laid out alike; blocks never straddle rows, cols % 64 == 0).
void dq_to_row_local(const uint8_t* data, int64_t rows, int64_t cols, uint8_t* out) {
  const DqLayout l = dq_layout(rows, cols);
#pragma omp parallel for schedule(static) if (l.nblocks >= 4096)
  for (int64_t b = 0; b < static_cast<int64_t>(l.nblocks); ++b) {
    BlockBnb4 block;
    block.absmax = dq_absmax(data, l, static_cast<uint64_t>(b));
    std::memcpy(block.qs, data + l.codes_offset() + b * (kBlock / 2), kBlock / 2);
    store_block(block, out + b * sizeof(BlockBnb4));
  }
}

template <const float* Code>
std::vector<Format> bnb_pair(std::string_view name, std::string_view dq_name, Tolerance tol,
                             std::string_view description, std::string_view dq_description) {
  Format plain = block_format<BlockBnb4, kBlock, quantize_row<Code>, dequantize_row<Code>>(
      name, kNotGguf, FormatKind::kNormalFloat, false, tol, description, &kFitRound<Code>);
  plain.max_abs_input = std::numeric_limits<float>::max();  // fp32 absmax
  Format dq = plain;
  dq.fit_round = nullptr;  // the absmax values are quantized across the tensor: no per-block fit
  dq.name = dq_name;
  dq.row_local = false;
  dq.block_bytes = kBlock / 2 + 1;  // codes + one 8-bit absmax; group scales amortised
  dq.bits_per_weight = 8.0 * dq_tensor_bytes(4096, 4096) / (4096.0 * 4096.0);
  dq.description = dq_description;
  dq.tensor_bytes = &dq_tensor_bytes;
  dq.quantize = &quantize_dq<Code>;
  dq.dequantize = &dequantize_dq<Code>;
  dq.row_local_twin = name;
  dq.to_row_local_twin = &dq_to_row_local;
  return {plain, dq};
}

}  // namespace

std::vector<Format> normal_float_formats() {
  auto out = bnb_pair<kNf4Code>("nf4", "nf4_dq", {0.11, 0.15, 0.01},
                                "bitsandbytes NF4: 64-blocks, fp32 absmax, normal-float code",
                                "NF4 with QLoRA double quantization of the absmax values");
  auto fp4 = bnb_pair<kBnbFp4Code>("fp4", "fp4_dq", {0.16, 0.22, 0.01},
                                   "bitsandbytes FP4: 64-blocks, fp32 absmax, bnb's E2M1 code",
                                   "FP4 with QLoRA double quantization of the absmax values");
  out.insert(out.end(), fp4.begin(), fp4.end());
  return out;
}

void pack_bnb4_block(float absmax, const uint8_t* codes, uint8_t* out) {
  std::memcpy(out + offsetof(BlockBnb4, absmax), &absmax, 4);
  std::memcpy(out + offsetof(BlockBnb4, qs), codes, kBlock / 2);
}

void pack_bnb4_dq(const uint8_t* codes, int64_t numel, const uint8_t* qabsmax, const float* group_scales, float offset, uint8_t* out) {
  const DqLayout l = dq_layout(1, numel);
  std::memcpy(out + l.codes_offset(), codes, static_cast<size_t>(numel / 2));
  std::memcpy(out + l.qabsmax_offset(), qabsmax, static_cast<size_t>(l.nblocks));
  std::memcpy(out + l.group_scale_offset(), group_scales, static_cast<size_t>(4 * l.ngroups));
  std::memcpy(out + l.mean_offset(), &offset, 4);
}

float bnb4_block_absmax(const uint8_t* block, const uint8_t** codes) {
  float absmax;
  std::memcpy(&absmax, block + offsetof(BlockBnb4, absmax), 4);
  *codes = block + offsetof(BlockBnb4, qs);
  return absmax;
}

Bnb4DqParts bnb4_dq_parts(const uint8_t* data, int64_t numel) {
  const DqLayout l = dq_layout(1, numel);
  Bnb4DqParts p{data + l.codes_offset(), data + l.qabsmax_offset(), data + l.group_scale_offset(),
                static_cast<int64_t>(l.nblocks), static_cast<int64_t>(l.ngroups), 0.0f};
  std::memcpy(&p.offset, data + l.mean_offset(), 4);
  return p;
}

}  // namespace lowbit::formats
