// The file a base perplexity run saves for later KL-divergence runs: per scored token the
// log-probabilities of the whole vocabulary in 16 bits (about half of f32, the layout
// llama.cpp's --kl-divergence-base also uses), plus the exact log-probability of the
// actual next token. Layout (little-endian):
//   "LBLOGIT1" | u64 n_vocab | u64 n_ctx | u64 n_chunks | u64 n_tokens | i32 tokens[n_tokens]
//   then per scored token: f32 max_logprob, f32 step, f32 target_logprob, u16 q[n_vocab]
//   where logprob[v] = max_logprob - step * q[v]; values more than 40 below the max are
//   stored at that floor (they cannot move KLD), and the reader renormalises.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "lowbit/atomic_file.h"
#include "lowbit/mapped_file.h"

namespace lowbit {

class LogitsFileWriter {
 public:
  LogitsFileWriter(const std::string& path, int64_t n_vocab, int64_t n_ctx, int64_t n_chunks,
                   std::span<const int32_t> tokens);
  // Continues the temporary file a killed writer of `path` left (claimed, and checked up
  // to byte `keep` by the caller), after its header and first records.
  LogitsFileWriter(const std::string& path, int64_t n_vocab, const std::string& temp_path, uint64_t keep);
  // logprobs: (n_vocab) log-softmax of one scored position; target: the next token.
  void add(const float* logprobs, int32_t target);
  void commit();
  // For a checkpoint: where the bytes so far are, and the XXH3 of those since the last call.
  const std::string& temp_path() const { return file_.temp_path(); }
  uint64_t bytes_written() const { return file_.bytes_written(); }
  uint64_t take_region_digest() { return file_.take_region_digest(); }

 private:
  AtomicFile file_;
  int64_t n_vocab_;
  std::vector<uint16_t> buffer_;
};

class LogitsFileReader {
 public:
  explicit LogitsFileReader(const std::string& path);
  int64_t n_vocab() const { return n_vocab_; }
  int64_t n_ctx() const { return n_ctx_; }
  int64_t n_chunks() const { return n_chunks_; }
  std::span<const int32_t> tokens() const { return tokens_; }
  int64_t n_records() const { return n_records_; }
  // Decodes record i into logprobs (n_vocab); returns the target's exact log-probability.
  float record(int64_t i, float* logprobs) const;

 private:
  std::shared_ptr<MappedFile> map_;
  int64_t n_vocab_ = 0, n_ctx_ = 0, n_chunks_ = 0, n_records_ = 0;
  std::vector<int32_t> tokens_;
  size_t records_offset_ = 0, record_bytes_ = 0;
};

}  // namespace lowbit
