// BlockPipeline (block_pipeline.h).
#include "quant/calib/block_pipeline.h"

#include <cstring>

#include "lowbit/error.h"
#include "lowbit/format.h"
#include "lowbit/stats_checkpoint.h"

namespace lowbit {
namespace {

std::vector<uint8_t> block_bytes(const std::map<std::string, QuantizedTensor>& block) {
  StatsWriter w;
  w.put<uint64_t>(block.size());
  for (const auto& [name, t] : block) {
    w.put_string(name);
    w.put_string(std::string(t.format->name));
    w.put(t.input_absmax);
    w.put<uint64_t>(t.bytes.size());
    w.put_bytes(t.bytes.data(), t.bytes.size());
  }
  return w.bytes();
}

std::map<std::string, QuantizedTensor> block_of(std::vector<uint8_t> bytes) {
  StatsReader in(std::move(bytes), "a block from another rank");
  std::map<std::string, QuantizedTensor> block;
  for (auto n = in.get<uint64_t>(); n > 0; --n) {
    const std::string name = in.get_string();
    QuantizedTensor t{&format_by_name(in.get_string()), {}, 0};
    t.input_absmax = in.get<float>();
    t.bytes.resize(static_cast<size_t>(in.get<uint64_t>()));
    in.get_bytes(t.bytes.data(), t.bytes.size());
    block.emplace(name, std::move(t));
  }
  return block;
}

std::vector<uint8_t> float_bytes(const std::vector<float>& x) {
  std::vector<uint8_t> b(x.size() * sizeof(float));
  std::memcpy(b.data(), x.data(), b.size());
  return b;
}

std::vector<float> floats_of(const std::vector<uint8_t>& b) {
  std::vector<float> x(b.size() / sizeof(float));
  std::memcpy(x.data(), b.data(), x.size() * sizeof(float));
  return x;
}

}  // namespace

BlockPipeline::BlockPipeline(LayerwiseQuantizer& quantizer, int64_t n_layers, Cluster& ranks)
    : q_(quantizer), layers_(n_layers), ranks_(ranks) {}

int64_t BlockPipeline::first_block(int rank) const { return static_cast<int64_t>(rank) * layers_ / ranks_.size(); }

int BlockPipeline::owner(int64_t block) const {
  int k = 0;
  while (k + 1 < ranks_.size() && first_block(k + 1) <= block) ++k;
  return k;
}

std::map<std::string, QuantizedTensor> BlockPipeline::block(int64_t l) {
  if (owner(l) == 0) return q_.next_block();
  if (!handed_over_ && ranks_.size() > 1) {  // rank 0's range is done: its outputs are rank 1's inputs
    ranks_.send(1, float_bytes(q_.inputs()));
    handed_over_ = true;
  }
  return block_of(ranks_.receive(owner(l)));
}

void BlockPipeline::serve() {
  const int k = ranks_.rank();
  q_.resume_at(first_block(k), floats_of(ranks_.receive(k - 1)));
  for (int64_t l = first_block(k); l < first_block(k + 1); ++l) ranks_.send(0, block_bytes(q_.next_block()));
  if (k + 1 < ranks_.size()) ranks_.send(k + 1, float_bytes(q_.inputs()));
}

}  // namespace lowbit
