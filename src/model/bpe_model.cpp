// tokenizer.json's BPE model on ids (see bpe_model.h). The merge loop keeps the symbols in
// a doubly linked list and the candidate merges in a min-heap of (rank, position); a
// candidate whose symbols changed since it was pushed is skipped when popped.
#include "model/bpe_model.h"

#include <algorithm>
#include <cstdio>
#include <queue>

#include "model/tokenizer_hf_bpe.h"
#include "model/unicode_text.h"

namespace lowbit {
namespace {

uint64_t pair_key(int32_t a, int32_t b) { return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b); }

}  // namespace

BpeModel::BpeModel(const std::vector<std::string>& tokens, const std::vector<std::string>& merges, BpeOptions options)
    : options_(std::move(options)) {
  std::fill(std::begin(byte_ids_), std::end(byte_ids_), -1);
  ids_.reserve(tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) {
    ids_.emplace(tokens[i], static_cast<int32_t>(i));
    if (const auto b = byte_token_value(tokens[i])) byte_ids_[*b] = static_cast<int32_t>(i);
  }
  merges_.reserve(merges.size());
  for (size_t r = 0; r < merges.size(); ++r) {
    const std::string& m = merges[r];
    const size_t space = m.find(' ');
    const int32_t a = id_of(std::string_view(m).substr(0, space)), b = id_of(std::string_view(m).substr(space + 1));
    const int32_t result = id_of(m.substr(0, space) + m.substr(space + 1));
    if (a < 0 || b < 0 || result < 0) continue;  // validate_bpe_spec refuses these first
    merges_.emplace(pair_key(a, b), Merge{static_cast<int32_t>(r), result});  // the first rank counts
  }
}

int32_t BpeModel::id_of(std::string_view token) const {
  const auto it = ids_.find(token);
  return it == ids_.end() ? -1 : it->second;
}

void BpeModel::encode(std::string_view word, std::vector<int32_t>& out, std::unordered_map<std::string, std::vector<int32_t>>* cache) const {
  if (word.empty()) return;
  if (options_.ignore_merges) {
    if (const int32_t id = id_of(word); id >= 0) {
      out.push_back(id);
      return;
    }
  }
  if (cache != nullptr) {
    const auto it = cache->find(std::string(word));
    if (it != cache->end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
    std::vector<int32_t> ids;
    merge_word(word, ids);
    out.insert(out.end(), ids.begin(), ids.end());
    if (cache->size() < 100000) cache->emplace(word, std::move(ids));
    return;
  }
  merge_word(word, out);
}

void BpeModel::merge_word(std::string_view word, std::vector<int32_t>& out) const {
  struct Symbol {
    int32_t id;
    int prev, next;
  };
  std::vector<Symbol> symbols;
  std::string piece;
  bool last_unk = false;
  for (size_t i = 0; i < word.size();) {
    const size_t start = i;
    unicode::next_code_point(word, i);
    piece.clear();
    if (start > 0) piece += options_.continuing_subword_prefix;
    piece.append(word, start, i - start);
    if (i == word.size()) piece += options_.end_of_word_suffix;
    const int32_t id = id_of(piece);
    if (id >= 0) {
      symbols.push_back({id, 0, 0});
      last_unk = false;
      continue;
    }
    bool all_bytes = options_.byte_fallback;
    for (size_t k = start; k < i && all_bytes; ++k) all_bytes = byte_ids_[static_cast<unsigned char>(word[k])] >= 0;
    if (all_bytes) {
      for (size_t k = start; k < i; ++k) symbols.push_back({byte_ids_[static_cast<unsigned char>(word[k])], 0, 0});
      last_unk = false;
      continue;
    }
    if (options_.unk < 0) continue;  // no unknown token: the character is dropped, as tokenizers does
    if (!(options_.fuse_unk && last_unk)) symbols.push_back({options_.unk, 0, 0});
    last_unk = true;
  }
  const int n = static_cast<int>(symbols.size());
  for (int k = 0; k < n; ++k) {
    symbols[k].prev = k - 1;
    symbols[k].next = k + 1 < n ? k + 1 : -1;
  }
  struct Candidate {
    int32_t rank;
    int pos;
    int32_t left, right;  // the ids the pair had when pushed
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
  auto push = [&](int pos) {
    if (pos < 0 || symbols[pos].next < 0) return;
    const int next = symbols[pos].next;
    const auto it = merges_.find(pair_key(symbols[pos].id, symbols[next].id));
    if (it != merges_.end()) heap.push({it->second.rank, pos, symbols[pos].id, symbols[next].id});
  };
  for (int k = 0; k + 1 < n; ++k) push(k);
  while (!heap.empty()) {
    const Candidate c = heap.top();
    heap.pop();
    Symbol& left = symbols[c.pos];
    if (left.id < 0 || left.id != c.left || left.next < 0 || symbols[left.next].id != c.right) continue;  // stale
    const int right = left.next;
    left.id = merges_.at(pair_key(c.left, c.right)).result;
    left.next = symbols[right].next;
    if (left.next >= 0) symbols[left.next].prev = c.pos;
    symbols[right].id = -1;
    if (left.prev >= 0) push(left.prev);
    push(c.pos);
  }
  for (int k = n > 0 ? 0 : -1; k >= 0; k = symbols[k].next) out.push_back(symbols[k].id);
}

}  // namespace lowbit
