// TrainModel's private parts (lowbit/train.h), shared by its source files: what one
// decoder linear carries besides its weight, and what one block's forward saves.
#pragma once

#include <memory>
#include <vector>

#include "lowbit/train.h"

namespace lowbit {

struct TrainModel::LinearExtras {
  size_t weight = 0;                // the base weight in params_
  int64_t lora_a = -1, lora_b = -1;  // adapters in params_ (-1: none)
  int64_t scale = -1, zero = -1;     // fake quantization in params_ (-1: none)
  std::vector<float> w_eff;          // the fake-quantized weight of the last forward
  std::vector<float> xa;             // (N, rank): x Aᵀ of the last forward
  FakeQuantOptions fq;               // with add_fake_quant (group resolved)
  bool codes = false;                // freeze_codes: the weight holds its integer codes
  std::shared_ptr<const Weight> frozen;  // freeze_base: the weight in its quantized bytes
};

struct TrainModel::BlockCache {
  std::vector<float> x, h1, rstd1, q, k, v, probs, att, x2, h2, rstd2, gate, up, act;
};

}  // namespace lowbit
