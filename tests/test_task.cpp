// Multiple-choice tasks (task.h): malformed files are refused with the line named; a cloze
// task keeps each passage's true continuation and distinct distractors, the same for the
// same seed; and a model trained on TinyStories picks right endings far above chance.
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>

#include "lowbit/error.h"
#include "lowbit/model_io.h"
#include "lowbit/task.h"
#include "test_support.h"

namespace lowbit {
namespace {

void expect_line_error(const std::string& content, const std::string& what) {
  const std::string path = test::temp_dir() + "/task.jsonl";
  std::ofstream(path) << content;
  try {
    load_task(path);
    ADD_FAILURE() << "accepted: " << content;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

TEST(Task, MalformedLinesNameTheLine) {
  const std::string good = R"({"ctx": "a", "endings": ["b", "c"], "label": 1})" "\n";
  expect_line_error(good + "{not json\n", "line 2");
  expect_line_error(good + good + R"({"ctx": "a", "label": 0})" "\n", "line 3");
  expect_line_error(R"({"ctx": "a", "endings": ["b"], "label": 0})" "\n", "fewer than two endings");
  expect_line_error(R"({"ctx": "a", "endings": ["b", "c"], "label": 2})" "\n", "out of range");
  expect_line_error(R"({"ctx": "a", "endings": ["b", 3], "label": 0})" "\n", "line 1");
  expect_line_error("\n\n", "no items");
  // HellaSwag writes labels as strings, and "context" is accepted for "ctx".
  const std::string path = test::temp_dir() + "/ok.jsonl";
  std::ofstream(path) << R"({"context": "a", "endings": ["b", "c", "d"], "label": "2"})" "\n";
  const auto items = load_task(path);
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].label, 2);
}

TEST(Task, ClozeItemsHoldTheTrueContinuation) {
  const std::string text = test::read_file(test::shared_path("data/tinystories-valid-30k.txt"));
  std::vector<std::string> words;
  std::istringstream in(text);
  for (std::string w; in >> w;) words.push_back(w);
  std::string flat;
  for (const auto& w : words) flat += w + " ";
  const ClozeOptions o{.items = 50, .endings = 4, .seed = 9};
  const auto items = make_cloze_task(text, o);
  ASSERT_EQ(items.size(), 50u);
  std::set<int64_t> labels;
  for (const TaskItem& item : items) {
    ASSERT_EQ(item.endings.size(), 4u);
    EXPECT_NE(flat.find(item.context + " " + item.endings[item.label] + " "), std::string::npos) << item.context;
    EXPECT_EQ(std::set<std::string>(item.endings.begin(), item.endings.end()).size(), 4u);
    labels.insert(item.label);
  }
  EXPECT_EQ(labels.size(), 4u);  // the right ending is not always in one place
  const auto again = make_cloze_task(text, o);
  for (size_t i = 0; i < items.size(); ++i) EXPECT_EQ(again[i].endings, items[i].endings);
  const std::string path = test::temp_dir() + "/cloze.jsonl";
  save_task(items, path);
  const auto loaded = load_task(path);
  ASSERT_EQ(loaded.size(), items.size());
  EXPECT_EQ(loaded[7].context, items[7].context);
  EXPECT_EQ(loaded[7].endings, items[7].endings);
  EXPECT_THROW(make_cloze_task("too few words", o), Error);
}

// 120 items of 4 endings: chance is 25% +/- 4%; TinyStories' own model reaches over 40%.
TEST(Task, ATrainedModelBeatsChance) {
  const Model m = load_model(test::shared_path("models/tinystories-656k"));
  const auto items = make_cloze_task(test::read_file(test::shared_path("data/tinystories-valid-30k.txt")), {.items = 120, .seed = 1});
  const TaskResult r = score_task(m, items);
  std::printf("tinystories-656k cloze accuracy %.3f +/- %.3f\n", r.accuracy, r.accuracy_stderr);
  EXPECT_GT(r.accuracy, 0.40);
  EXPECT_EQ(r.choices.size(), items.size());
}

}  // namespace
}  // namespace lowbit
