// Multiple-choice tasks (task.h).
#include "lowbit/task.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>
#include <random>
#include <set>
#include <sstream>

#include "eval/token_scores.h"
#include "lowbit/atomic_file.h"
#include "lowbit/error.h"

namespace lowbit {
namespace {

using Json = nlohmann::json;

[[noreturn]] void bad_line(const std::string& path, int64_t line, const std::string& what) {
  throw Error("task line " + std::to_string(line) + ": " + what, {.file = path, .value = "line " + std::to_string(line)});
}

std::vector<std::string> words_of(const std::string& text) {
  std::vector<std::string> words;
  std::istringstream in(text);
  for (std::string w; in >> w;) words.push_back(w);
  return words;
}

std::string join(const std::vector<std::string>& words, size_t from, size_t n) {
  std::string out;
  for (size_t i = from; i < from + n; ++i) out += (i > from ? " " : "") + words[i];
  return out;
}

// Log-probabilities of the ending tokens tokens[from..) given everything before them.
double ending_logprob(Engine& engine, std::span<const int32_t> tokens, int64_t from, int64_t vocab, std::vector<float>& logits,
                      std::vector<float>& logprobs) {
  const int64_t n = static_cast<int64_t>(tokens.size());
  logits.resize(static_cast<size_t>(n * vocab));
  engine.forward(tokens, 0, logits.data(), true);
  double sum = 0;
  for (int64_t j = from; j < n; ++j) {
    log_softmax(logits.data() + (j - 1) * vocab, vocab, logprobs.data());
    sum += logprobs[static_cast<size_t>(tokens[static_cast<size_t>(j)])];
  }
  return sum;
}

}  // namespace

std::vector<TaskItem> load_task(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open task file", {.file = path});
  std::vector<TaskItem> items;
  std::string line;
  for (int64_t number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    Json j;
    try {
      j = Json::parse(line);
    } catch (const Json::exception& e) {
      bad_line(path, number, std::string("not JSON (") + e.what() + ")");
    }
    if (!j.is_object()) bad_line(path, number, "not a JSON object");
    TaskItem item;
    const char* ctx = j.contains("ctx") ? "ctx" : "context";
    if (!j.contains(ctx) || !j[ctx].is_string()) bad_line(path, number, "no string \"ctx\" (or \"context\")");
    item.context = j[ctx].get<std::string>();
    if (!j.contains("endings") || !j["endings"].is_array()) bad_line(path, number, "no \"endings\" array");
    for (const Json& e : j["endings"]) {
      if (!e.is_string()) bad_line(path, number, "an ending is not a string");
      item.endings.push_back(e.get<std::string>());
    }
    if (item.endings.size() < 2) bad_line(path, number, "fewer than two endings");
    if (!j.contains("label")) bad_line(path, number, "no \"label\"");
    const Json& label = j["label"];
    if (label.is_number_integer()) {
      item.label = label.get<int64_t>();
    } else if (label.is_string() && !label.get<std::string>().empty() &&
               label.get<std::string>().find_first_not_of("0123456789") == std::string::npos && label.get<std::string>().size() < 10) {
      item.label = std::stoll(label.get<std::string>());  // HellaSwag writes "2"
    } else {
      bad_line(path, number, "\"label\" is not an ending's index");
    }
    if (item.label < 0 || item.label >= static_cast<int64_t>(item.endings.size())) bad_line(path, number, "\"label\" is out of range");
    items.push_back(std::move(item));
  }
  if (items.empty()) throw Error("task file has no items", {.file = path});
  return items;
}

void save_task(const std::vector<TaskItem>& items, const std::string& path) {
  std::string text;
  for (const TaskItem& item : items) {
    text += Json{{"ctx", item.context}, {"endings", item.endings}, {"label", item.label}}.dump() + "\n";
  }
  AtomicFile f(path);
  f.write(text.data(), text.size());
  f.commit();
}

std::vector<TaskItem> make_cloze_task(const std::string& text, const ClozeOptions& o) {
  if (o.items < 1 || o.endings < 2 || o.context_words < 1 || o.ending_words < 1) {
    throw Error("a cloze task needs at least 1 item, 2 endings and 1 word of context and ending");
  }
  const std::vector<std::string> words = words_of(text);
  const size_t span = static_cast<size_t>(o.context_words + o.ending_words);
  // Passages do not overlap: the text must hold items of them, plus room for distractors.
  if (words.size() < span * static_cast<size_t>(o.items + o.endings)) {
    throw Error("text too short for this task: " + std::to_string(words.size()) + " words, need " +
                std::to_string(span * static_cast<size_t>(o.items + o.endings)));
  }
  std::mt19937_64 rng(o.seed);
  auto below = [&](size_t n) { return static_cast<size_t>(rng() % n); };
  const size_t slots = words.size() / span;
  std::vector<size_t> order(slots);
  for (size_t i = 0; i < slots; ++i) order[i] = i;
  for (size_t i = slots - 1; i > 0; --i) std::swap(order[i], order[below(i + 1)]);  // Fisher-Yates
  const size_t ew = static_cast<size_t>(o.ending_words);
  std::vector<TaskItem> items;
  for (int64_t k = 0; k < o.items; ++k) {
    const size_t start = order[static_cast<size_t>(k)] * span;
    TaskItem item;
    item.context = join(words, start, static_cast<size_t>(o.context_words));
    const std::string truth = join(words, start + static_cast<size_t>(o.context_words), ew);
    std::set<std::string> seen{truth};
    std::vector<std::string> others;
    while (static_cast<int64_t>(others.size()) < o.endings - 1) {
      const size_t at = below(words.size() - ew + 1);
      if (at + ew > start && at < start + span) continue;  // not from this passage
      std::string e = join(words, at, ew);
      if (seen.insert(e).second) others.push_back(std::move(e));
    }
    item.label = static_cast<int64_t>(below(static_cast<size_t>(o.endings)));
    for (int64_t i = 0, d = 0; i < o.endings; ++i) item.endings.push_back(i == item.label ? truth : others[static_cast<size_t>(d++)]);
    items.push_back(std::move(item));
  }
  return items;
}

TaskResult score_task(const Model& model, const std::vector<TaskItem>& items, const KvCacheOptions& kv,
                      const std::function<void(int64_t, int64_t)>& progress, const ActQuantOptions& act) {
  const int64_t ctx = model.config.context_length, vocab = model.config.vocab_size;
  Engine engine(model, ctx, kv);
  engine.set_activation_quant(act);
  std::vector<float> logits, logprobs(static_cast<size_t>(vocab));
  TaskResult r;
  r.items = static_cast<int64_t>(items.size());
  int64_t right = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    const TaskItem& item = items[i];
    // As llama.cpp: each ending tokenized with the context ("ctx ending"); the tokens all
    // of them share are the context, the rest the ending.
    std::vector<std::vector<int32_t>> seqs;
    for (const std::string& e : item.endings) seqs.push_back(model.tokenizer->encode(item.context + " " + e, true));
    size_t common = seqs[0].size();
    for (const auto& s : seqs) {
      size_t n = 0;
      while (n < std::min(common, s.size()) && s[n] == seqs[0][n]) ++n;
      common = n;
    }
    common = std::max<size_t>(common, 1);  // the first token is never scored
    int64_t best = 0;
    double best_score = -INFINITY;
    for (size_t e = 0; e < seqs.size(); ++e) {
      std::vector<int32_t> s = seqs[e];
      int64_t from = static_cast<int64_t>(common);
      if (static_cast<int64_t>(s.size()) > ctx) {  // keep the ending and the context's end
        const int64_t cut = static_cast<int64_t>(s.size()) - ctx;
        if (cut >= from) throw Error("a task ending is longer than the model's context", {.value = "item " + std::to_string(i + 1)});
        s.erase(s.begin(), s.begin() + cut);
        from -= cut;
      }
      if (from >= static_cast<int64_t>(s.size())) continue;  // an ending with no tokens of its own
      const double score = ending_logprob(engine, s, from, vocab, logits, logprobs) / static_cast<double>(static_cast<int64_t>(s.size()) - from);
      if (score > best_score) {
        best_score = score;
        best = static_cast<int64_t>(e);
      }
    }
    r.choices.push_back(best);
    right += best == item.label;
    if (progress) progress(static_cast<int64_t>(i) + 1, r.items);
  }
  r.accuracy = static_cast<double>(right) / static_cast<double>(r.items);
  r.accuracy_stderr = std::sqrt(r.accuracy * (1 - r.accuracy) / static_cast<double>(std::max<int64_t>(1, r.items - 1)));
  return r;
}

}  // namespace lowbit
