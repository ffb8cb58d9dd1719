// LogitsFile writer and validated reader (layout in logits_file.h).
#include "eval/logits_file.h"

#include <cmath>
#include <cstring>

#include "lowbit/error.h"

namespace lowbit {
namespace {

constexpr char kMagic[8] = {'L', 'B', 'L', 'O', 'G', 'I', 'T', '1'};
constexpr size_t kHeaderBytes = 8 + 4 * 8;

}  // namespace

LogitsFileWriter::LogitsFileWriter(const std::string& path, int64_t n_vocab, int64_t n_ctx, int64_t n_chunks,
                                   std::span<const int32_t> tokens)
    : file_(path), n_vocab_(n_vocab), buffer_(static_cast<size_t>(n_vocab)) {
  file_.write(kMagic, 8);
  const uint64_t header[4] = {static_cast<uint64_t>(n_vocab), static_cast<uint64_t>(n_ctx),
                              static_cast<uint64_t>(n_chunks), tokens.size()};
  file_.write(header, sizeof(header));
  file_.write(tokens.data(), tokens.size_bytes());
}

LogitsFileWriter::LogitsFileWriter(const std::string& path, int64_t n_vocab, const std::string& temp_path, uint64_t keep)
    : file_(path, temp_path, keep), n_vocab_(n_vocab), buffer_(static_cast<size_t>(n_vocab)) {}

void LogitsFileWriter::add(const float* logprobs, int32_t target) {
  // Log-probabilities more than 40 below the largest (p < 4e-18 of it) are stored as the
  // floor: they do not move KLD, and the narrower range keeps the 16-bit step small.
  float max = -INFINITY, min = INFINITY;
  for (int64_t v = 0; v < n_vocab_; ++v) max = std::max(max, logprobs[v]);
  for (int64_t v = 0; v < n_vocab_; ++v) min = std::min(min, std::max(logprobs[v], max - 40.0f));
  const float step = max > min ? (max - min) / 65535.0f : 1.0f;
  for (int64_t v = 0; v < n_vocab_; ++v) {
    const float q = std::nearbyint((max - std::max(logprobs[v], min)) / step);
    buffer_[v] = static_cast<uint16_t>(std::min(65535.0f, std::max(0.0f, q)));
  }
  const float meta[3] = {max, step, logprobs[target]};
  file_.write(meta, sizeof(meta));
  file_.write(buffer_.data(), buffer_.size() * 2);
}

void LogitsFileWriter::commit() { file_.commit(); }

LogitsFileReader::LogitsFileReader(const std::string& path) : map_(std::make_shared<MappedFile>(path)) {
  const auto b = map_->bytes();
  if (b.size() < kHeaderBytes || std::memcmp(b.data(), kMagic, 8) != 0) {
    throw Error("not a lowbit logits file (bad magic or too short)", {.file = path});
  }
  uint64_t h[4];
  std::memcpy(h, b.data() + 8, sizeof(h));
  if (h[0] == 0 || h[0] > (1u << 24) || h[1] == 0 || h[3] > (b.size() - kHeaderBytes) / 4) {
    throw Error("corrupt logits file header", {.file = path, .value = std::to_string(h[0]) + " vocab, " + std::to_string(h[3]) + " tokens"});
  }
  n_vocab_ = static_cast<int64_t>(h[0]);
  n_ctx_ = static_cast<int64_t>(h[1]);
  n_chunks_ = static_cast<int64_t>(h[2]);
  tokens_.resize(h[3]);
  std::memcpy(tokens_.data(), b.data() + kHeaderBytes, h[3] * 4);
  records_offset_ = kHeaderBytes + h[3] * 4;
  record_bytes_ = 12 + 2 * static_cast<size_t>(n_vocab_);
  const size_t rest = b.size() - records_offset_;
  if (rest % record_bytes_ != 0) {
    throw Error("truncated logits file", {.file = path, .value = std::to_string(b.size()) + " bytes"});
  }
  n_records_ = static_cast<int64_t>(rest / record_bytes_);
}

float LogitsFileReader::record(int64_t i, float* logprobs) const {
  const uint8_t* p = map_->bytes().data() + records_offset_ + static_cast<size_t>(i) * record_bytes_;
  float meta[3];
  std::memcpy(meta, p, 12);
  const uint8_t* q = p + 12;
  double sum = 0;
  for (int64_t v = 0; v < n_vocab_; ++v) {
    uint16_t u;
    std::memcpy(&u, q + 2 * v, 2);
    logprobs[v] = meta[0] - meta[1] * u;
    sum += std::exp(static_cast<double>(logprobs[v]));
  }
  // Renormalise: the rounding would otherwise leave probabilities summing to 1 +- 1e-4,
  // an error KLD would see at first order.
  const auto shift = static_cast<float>(std::log(sum));
  for (int64_t v = 0; v < n_vocab_; ++v) logprobs[v] -= shift;
  return meta[2];
}

}  // namespace lowbit
