// Training checkpoints (train_steps' --save-every / --resume): a folder with state.safetensors
// holding, per trainable tensor, value.NAME, m.NAME and v.NAME (AdamW's moments), and in
// its metadata the steps done, AdamW's step count, the window generator's state and the
// options that must not change across a resume.
#pragma once

#include <random>
#include <string>

#include "lowbit/train.h"

namespace lowbit::train {

struct CheckpointState {
  int64_t step = 0;
  std::string rng;      // std::mt19937_64 as operator<< writes it
  std::string options;  // what the run was started with (seq_len, batch, ...)
};

// Replaces `dir` atomically (a temporary folder renamed over it).
void save_checkpoint(const std::string& dir, TrainModel& model, AdamW& opt, const CheckpointState& state);
// Restores the trainable tensors and AdamW; an Error naming the folder (and tensor) when
// it does not fit the model or was made with other options.
CheckpointState load_checkpoint(const std::string& dir, TrainModel& model, AdamW& opt, const std::string& options);

}  // namespace lowbit::train
