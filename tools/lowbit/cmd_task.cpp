// `lowbit task make TEXT -o FILE.jsonl [--items N] [--endings 4] [--seed S] [--json]`: a
// cloze multiple-choice task from any text, for `lowbit eval --task`.
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "lowbit/output_guard.h"
#include "lowbit/task.h"

namespace lowbit::cli {

Runner register_task(CLI::App& app) {
  auto* sub = app.add_subcommand("task", "build multiple-choice tasks for eval --task");
  sub->require_subcommand(1);
  auto* make = sub->add_subcommand("make", "a cloze task from a text: a passage, its true continuation, and continuations from elsewhere");
  struct Options {
    std::string text, out;
    ClozeOptions cloze;
    bool json = false;
  };
  auto o = std::make_shared<Options>();
  make->add_option("text", o->text, "text file, read as raw bytes")->required();
  make->add_option("-o,--output", o->out, "the task file to write (JSONL, one item per line)")->required();
  make->add_option("--items", o->cloze.items, "items")->check(CLI::Range(int64_t{1}, int64_t{1} << 24));
  make->add_option("--endings", o->cloze.endings, "endings per item, one of them right")->check(CLI::Range(int64_t{2}, int64_t{26}));
  make->add_option("--context-words", o->cloze.context_words, "words of context")->check(CLI::Range(int64_t{1}, int64_t{1} << 16));
  make->add_option("--ending-words", o->cloze.ending_words, "words per ending")->check(CLI::Range(int64_t{1}, int64_t{1} << 16));
  make->add_option("--seed", o->cloze.seed, "random seed");
  make->add_flag("--json", o->json, "print a JSON summary");
  return [o, make]() {
    if (!make->parsed()) return 0;
    refuse_overwriting_inputs(o->out, {o->text});
    const auto items = make_cloze_task(read_text_file(o->text), o->cloze);
    save_task(items, o->out);
    if (o->json) {
      fmt::print("{}\n", nlohmann::ordered_json{{"output", o->out}, {"items", items.size()}, {"endings", o->cloze.endings},
                                                {"seed", o->cloze.seed}}.dump(2));
    } else {
      fmt::print("wrote {}: {} items of {} endings\n", o->out, items.size(), o->cloze.endings);
    }
    return 0;
  };
}

}  // namespace lowbit::cli
