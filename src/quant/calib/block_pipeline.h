// The calibrated pass across the ranks of `mpirun -np N lowbit quantize` (lowbit/cluster.h):
// rank k quantizes blocks [k·L/N, (k+1)·L/N). Rank 0 embeds the calibration samples and
// runs its range; every rank hands its last block's outputs (samples × length × dim
// floats) to the next, which continues from them with LayerwiseQuantizer::resume_at, and
// sends each block's quantized tensors to rank 0, which writes the file in order. A block
// is a function of its inputs alone, computed the same on any rank and thread count, so
// the file is the one process's, byte for byte. (It saves memory per node, not time: block
// l + 1 needs block l quantized. docs/SCALE.md.)
#pragma once

#include <map>
#include <string>

#include "lowbit/cluster.h"
#include "lowbit/layerwise.h"

namespace lowbit {

class BlockPipeline {
 public:
  BlockPipeline(LayerwiseQuantizer& quantizer, int64_t n_layers, Cluster& ranks);
  int64_t first_block(int rank) const;  // of the rank's range; first_block(N) = L
  int owner(int64_t block) const;
  // Rank 0: block l's tensors, blocks in order, computed here or received from their rank.
  std::map<std::string, QuantizedTensor> block(int64_t l);
  // The other ranks: receive the inputs, quantize the range, send it on. Returns when done.
  void serve();

 private:
  LayerwiseQuantizer& q_;
  int64_t layers_;
  Cluster& ranks_;
  bool handed_over_ = false;  // rank 0: its outputs went to rank 1
};

}  // namespace lowbit
