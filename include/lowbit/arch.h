// Per-architecture groupings of a block's linear layers, as data: which linears read the
// same input, what produces that input (an RMSNorm whose weight can absorb a per-channel
// scale, or a previous linear whose output rows can), and the order in which a
// true-sequential method quantizes them. Calibration methods (GPTQ, AWQ, imatrix) read
// this table; none of them matches tensor names.
#pragma once

#include <string>
#include <vector>

#include "lowbit/model.h"

namespace lowbit {

using LayerWeight = Weight LayerWeights::*;

// What an AWQ scale search runs to measure the error of a scaled group.
enum class InspectedModule {
  kAttention,  // the attention sub-block (q, k, v, attention, o)
  kMlp,        // the feed-forward sub-block (gate, up, SwiGLU, down)
  kLinear,     // the group's own linear
};

struct GroupMember {
  const char* role;    // "q", "k", "v", "o", "gate", "up", "down"
  LayerWeight weight;
  bool awq_clip;       // AWQ's clip search applies (not to q and k, whose products feed a softmax)
};

struct LinearGroup {
  const char* name;             // "attn_in", "attn_out_in", "ffn_in", "ffn_down_in"
  std::vector<GroupMember> members;
  LayerWeight fed_by_norm = nullptr;    // RMSNorm producing the input (scales fold into its weight)
  LayerWeight fed_by_linear = nullptr;  // or the linear producing it (scales fold into its rows)
  InspectedModule inspect = InspectedModule::kLinear;
  LayerWeight fed_by_bias = nullptr;    // fed_by_linear's bias, when the model has one (scaled with its rows)
};

struct ArchLayout {
  const char* architecture;       // config.architecture
  std::vector<LinearGroup> groups;  // in the order a forward pass reaches them
};

// Throws Error for an architecture without a layout.
const ArchLayout& arch_layout(const std::string& architecture);

}  // namespace lowbit
