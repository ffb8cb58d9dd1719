// Multiple-choice tasks: each item is a context and its possible endings, one of them
// right. A model picks the ending whose tokens it finds most likely after the context, by
// the summed log-probability of the ending's tokens divided by their count, as llama.cpp's
// HellaSwag mode (acc_norm) scores. Files are JSONL, one item per line, with HellaSwag's
// keys: {"ctx": "...", "endings": ["...", ...], "label": 2} ("context" works for "ctx").
// make_cloze_task builds such a file from any text.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "lowbit/engine.h"
#include "lowbit/model.h"

namespace lowbit {

struct TaskItem {
  std::string context;
  std::vector<std::string> endings;  // at least 2
  int64_t label = 0;                 // the right ending
};

// Throws Error naming the file and line for a malformed line (not JSON, a missing or
// mistyped key, fewer than two endings, a label out of range) and for an empty file.
std::vector<TaskItem> load_task(const std::string& path);
// One JSON object per line, written atomically.
void save_task(const std::vector<TaskItem>& items, const std::string& path);

struct ClozeOptions {
  int64_t items = 100;
  int64_t endings = 4;
  int64_t context_words = 32, ending_words = 10;
  uint64_t seed = 1;
};
// Passages of context_words words from `text`, each with its true continuation of
// ending_words words and endings - 1 continuations taken from elsewhere in the text (no two
// endings alike), the right one at a random place. Throws Error when the text is too
// short for the requested items.
std::vector<TaskItem> make_cloze_task(const std::string& text, const ClozeOptions& options);

struct TaskResult {
  int64_t items = 0;
  double accuracy = 0, accuracy_stderr = 0;  // llama.cpp's rule (mean log-prob per ending token)
  std::vector<int64_t> choices;              // the ending chosen for each item
};

// Scores every item with `model` (contexts longer than the model's context are cut from
// the left). progress: (items done, total).
TaskResult score_task(const Model& model, const std::vector<TaskItem>& items, const KvCacheOptions& kv = {},
                      const std::function<void(int64_t, int64_t)>& progress = {}, const ActQuantOptions& act = {});

}  // namespace lowbit
