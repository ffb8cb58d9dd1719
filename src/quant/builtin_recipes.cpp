// The built-in recipes: llama.cpp's file types as data (llama_tensor_get_type in
// src/llama-quant.cpp, dense Llama and Qwen models; the Falcon-only branches are left out
// because lowbit reads no Falcon model). Checked tensor by tensor against llama.cpp's own
// choices for 16 file types on six shapes (tests/test_recipe_oracle.cpp).
//
// Order matters: the first matching rule wins, so the rules llama.cpp applies last as
// overrides (8 experts -> attn_v/attn_k q8_0; the "70B" bump of a q3_k/q4_k attn_v to
// q5_k) come before the rules they override.
#include <vector>

#include "lowbit/recipe.h"

namespace lowbit {
namespace {

using Rules = std::vector<RecipeRule>;

// Every quantized llama.cpp type: output (and a tied embedding) in q6_k, and with 8 experts
// attn_v and attn_k in q8_0.
Recipe llama_mix(std::string name, std::string description, std::string base, int32_t file_type, Rules rules) {
  Rules all{{"output", "", "q6_k", ""}, {"attn_v", "", "q8_0", "experts=8"}, {"attn_k", "", "q8_0", "experts=8"}};
  if (base == "q8_0") all.erase(all.begin());  // llama.cpp keeps a q8_0 output in q8_0
  all.insert(all.end(), rules.begin(), rules.end());
  return {std::move(name), std::move(description), std::move(base), std::move(all), file_type};
}

// attn_output in q5_k with 8 experts, for the file types llama.cpp lists there.
const RecipeRule kMoeAttnOutput{"attn_output", "", "q5_k", "experts=8"};
// llama.cpp's "70B" (80 layers with GQA): a q3_k or q4_k attn_v becomes q5_k.
const RecipeRule k70bAttnV{"attn_v", "", "q5_k", "70b"};

}  // namespace

const std::vector<Recipe>& builtin_recipes() {
  static const std::vector<Recipe> r{
      {"f16", "every matrix in f16 (norms f32), as llama.cpp's converter writes", "f16", {}, 1},
      {"bf16", "every matrix in bf16", "bf16", {}, 32},
      llama_mix("q8_0", "Q8_0 everywhere (~8.5 bpw)", "q8_0", 7, {}),
      llama_mix("q6_k", "Q6_K everywhere (~6.6 bpw)", "q6_k", 18, {}),
      llama_mix("q5_k_m", "Q5_K, attn_v/ffn_down of the more-bits layers Q6_K (~5.7 bpw)", "q5_k", 17,
                {{"attn_v", "more-bits", "q6_k", ""}, {"ffn_down", "more-bits", "q6_k", ""}}),
      llama_mix("q5_k_s", "Q5_K, output Q6_K (~5.5 bpw)", "q5_k", 16, {}),
      llama_mix("q4_k_m", "Q4_K, attn_v/ffn_down of the more-bits layers Q6_K (~4.9 bpw)", "q4_k", 15,
                {{"attn_v", "more-bits", "q6_k", ""}, k70bAttnV, {"ffn_down", "more-bits", "q6_k", ""}, kMoeAttnOutput}),
      llama_mix("q4_k_s", "Q4_K, attn_v of layers 0-3 and ffn_down of the first eighth Q5_K (~4.6 bpw)", "q4_k", 14,
                {k70bAttnV, {"attn_v", "0-3", "q5_k", ""}, {"ffn_down", "first:1/8", "q5_k", ""}, kMoeAttnOutput}),
      llama_mix("q3_k_l", "Q3_K, attn_v/attn_output/ffn_down Q5_K (~4.3 bpw)", "q3_k", 13,
                {{"attn_v", "", "q5_k", ""}, {"ffn_down", "", "q5_k", ""}, {"attn_output", "", "q3_k", "experts=8"},
                 {"attn_output", "", "q5_k", ""}}),
      llama_mix("q3_k_m", "Q3_K, attn_v Q5_K/Q4_K, ffn_down Q5_K/Q4_K, attn_output Q4_K (~3.9 bpw)", "q3_k", 12,
                {k70bAttnV, {"attn_v", "0-1", "q5_k", ""}, {"attn_v", "", "q4_k", ""}, {"ffn_down", "first:1/16", "q5_k", ""},
                 {"ffn_down", "", "q4_k", ""}, kMoeAttnOutput, {"attn_output", "", "q4_k", ""}}),
      llama_mix("q3_k_s", "Q3_K everywhere, output Q6_K (~3.5 bpw)", "q3_k", 11, {k70bAttnV, kMoeAttnOutput}),
      llama_mix("q2_k", "Q2_K, attn_v Q3_K (Q4_K with GQA >= 4), ffn_down/attn_output Q3_K (~3.0 bpw)", "q2_k", 10,
                {k70bAttnV, {"attn_v", "", "q4_k", "gqa>=4"}, {"attn_v", "", "q3_k", ""}, {"ffn_down", "", "q3_k", ""},
                 kMoeAttnOutput, {"attn_output", "", "q3_k", ""}}),
      llama_mix("q2_k_s", "Q2_K, attn_v Q4_K with GQA >= 4, ffn_down of the first eighth Q4_K (~2.8 bpw)", "q2_k", 21,
                {{"attn_v", "", "q5_k", "70b,gqa>=4"}, {"attn_v", "", "q4_k", "gqa>=4"}, {"ffn_down", "first:1/8", "q4_k", ""}}),
      {"q2_k_xs", "Q2_K everywhere, output included (~2.6 bpw; llama-quantize --pure)", "q2_k", {}, 10},
      {"q4_k_m-f16", "q4_k_m with token_embd and output kept in f16", "q4_k",
       {{"output", "", "f16", ""}, {"token_embd", "", "f16", ""}, {"attn_v", "more-bits", "q6_k", ""}, k70bAttnV,
        {"ffn_down", "more-bits", "q6_k", ""}},
       15},
      llama_mix("q5_1", "Q5_1 everywhere, output Q6_K", "q5_1", 9, {}),
      llama_mix("q5_0", "Q5_0, ffn_down of the first eighth Q5_1 when an imatrix is given", "q5_0", 8,
                {{"ffn_down", "first:1/8", "q5_1", "imatrix"}}),
      llama_mix("q4_1", "Q4_1 everywhere, output Q6_K", "q4_1", 3, {}),
      llama_mix("q4_0", "Q4_0, ffn_down of the first eighth Q4_1 when an imatrix is given", "q4_0", 2,
                {{"ffn_down", "first:1/8", "q4_1", "imatrix"}}),
      llama_mix("iq4_nl", "IQ4_NL, attn_v Q5_K with GQA >= 4, ffn_down of the first eighth Q5_K without imatrix", "iq4_nl", 25,
                {{"attn_v", "", "q5_k", "gqa>=4"}, {"ffn_down", "first:1/8", "q5_k", "!imatrix"}, kMoeAttnOutput}),
      llama_mix("iq4_xs", "IQ4_XS, attn_v Q5_K with GQA >= 4, ffn_down of the first eighth Q5_K without imatrix", "iq4_xs", 30,
                {{"attn_v", "", "q5_k", "gqa>=4"}, {"ffn_down", "first:1/8", "q5_k", "!imatrix"}, kMoeAttnOutput}),
  };
  return r;
}

}  // namespace lowbit
