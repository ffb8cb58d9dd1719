// The synthetic byte-level BPE vocabulary (synth.h): merges grow tokens from short tokens
// and lowercase letters most often, as a trained vocabulary's merges do. Deterministic;
// every merge's parts and result are tokens.
#include <unordered_set>

#include "lowbit/error.h"
#include "lowbit/synth.h"
#include "model/byte_level.h"

namespace lowbit {

GgufVocab synth_vocab(int64_t size) {
  if (size < 258) throw Error("a byte-level vocabulary needs at least 258 tokens (256 bytes, BOS, EOS)", {.value = std::to_string(size)});
  GgufVocab v;
  v.model = "gpt2";
  v.pre = "gpt-2";  // GPT-2's split regex, in llama.cpp and in lowbit
  for (int b = 0; b < 256; ++b) v.tokens.push_back(gpt2_byte_to_unicode(static_cast<uint8_t>(b)));
  std::unordered_set<std::string> have(v.tokens.begin(), v.tokens.end());
  // Second parts: lowercase letters (frequent in text), sometimes any byte.
  std::vector<std::string> tails;
  for (char c = 'a'; c <= 'z'; ++c) tails.push_back(gpt2_byte_to_unicode(static_cast<uint8_t>(c)));
  uint64_t state = 0x9E3779B97F4A7C15ull;
  auto next = [&] {  // splitmix64
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  };
  const size_t merged = static_cast<size_t>(size - 2);
  while (v.tokens.size() < merged) {
    // First parts favour short, early tokens (index n·u³), so that common bigrams and
    // space-led word starts ("Ġt", "Ġth") grow first, as in a trained vocabulary.
    const double u = static_cast<double>(next() >> 11) * 0x1.0p-53;
    const std::string& head = v.tokens[static_cast<size_t>(static_cast<double>(v.tokens.size()) * u * u * u)];
    const uint64_t r = next();
    const std::string& tail = (r & 3) != 0 ? tails[(r >> 2) % tails.size()] : v.tokens[(r >> 2) % 256];
    std::string joined = head + tail;
    if (joined.size() > 24 || have.count(joined)) continue;
    v.merges.push_back(head + " " + tail);
    have.insert(joined);
    v.tokens.push_back(std::move(joined));
  }
  v.token_types.assign(v.tokens.size(), static_cast<int32_t>(TokenType::kNormal));
  v.bos = static_cast<int32_t>(v.tokens.size());
  v.tokens.push_back("<|begin_of_text|>");
  v.eos = static_cast<int32_t>(v.tokens.size());
  v.tokens.push_back("<|end_of_text|>");
  v.token_types.push_back(static_cast<int32_t>(TokenType::kControl));
  v.token_types.push_back(static_cast<int32_t>(TokenType::kControl));
  v.add_bos = true;
  return v;
}

}  // namespace lowbit
