// Reading jsonl inputs: question/answer datasets and dumped task samples. Every error names
// the file and the line.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "core/error.h"
#include "eval/qa_dataset.h"
#include "eval/tasks/task_sample.h"

namespace vortex::eval {
namespace {

namespace fs = std::filesystem;

class TempFile {
 public:
  explicit TempFile(const std::string& text) {
    path_ = (fs::temp_directory_path() / ("vortex_eval_" + std::to_string(getpid()) + "_" +
                                          std::to_string(counter_++) + ".jsonl"))
                .string();
    std::ofstream(path_, std::ios::binary) << text;
  }
  ~TempFile() { fs::remove(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  static inline int counter_ = 0;
};

std::string error_of(const std::string& text) {
  TempFile f(text);
  try {
    load_qa_jsonl(f.path());
  } catch (const Error& e) {
    std::string msg = e.what();
    // Tests compare what follows the path.
    EXPECT_EQ(msg.rfind(f.path(), 0), 0u) << msg;
    return msg.substr(f.path().size());
  }
  ADD_FAILURE() << "no error for: " << text;
  return "";
}

TEST(QaDataset, ReadsQuestionOrProblemAndStringOrNumberAnswers) {
  TempFile f(
      "{\"id\": \"a\", \"question\": \"1+1?\", \"answer\": \"2\"}\n"
      "\n"
      "{\"problem\": \"2+2?\", \"answer\": 4}\r\n"
      "{\"question\": \"half?\", \"answer\": 0.5, \"id\": 7}\n");
  const std::vector<QaItem> items = load_qa_jsonl(f.path());
  ASSERT_EQ(items.size(), 3u);
  EXPECT_EQ(items[0].id, "a");
  EXPECT_EQ(items[0].question, "1+1?");
  EXPECT_EQ(items[0].answer, "2");
  EXPECT_EQ(items[1].id, "3");  // no id: the line number
  EXPECT_EQ(items[1].question, "2+2?");
  EXPECT_EQ(items[1].answer, "4");
  EXPECT_EQ(items[1].line, 3);
  EXPECT_EQ(items[2].id, "7");
  EXPECT_EQ(items[2].answer, "0.5");
}

TEST(QaDataset, ErrorsNameTheFileAndLine) {
  EXPECT_EQ(error_of("{\"question\": \"q\", \"answer\": 1}\n{\"question\": \"q\"\n").substr(0, 37),
            ":2: not valid JSON (parse error at li");
  EXPECT_EQ(error_of("{\"question\": \"q\", \"answer\": 1}\n\n[1, 2]\n"),
            ":3: expected a JSON object per line");
  EXPECT_EQ(error_of("{\"answer\": 1}\n"), ":1: no 'question' or 'problem' field");
  EXPECT_EQ(error_of("{\"question\": 5, \"answer\": 1}\n"),
            ":1: field 'question' must be a string");
  EXPECT_EQ(error_of("{\"question\": \"q\"}\n"), ":1: no 'answer' field");
  EXPECT_EQ(error_of("{\"question\": \"q\", \"answer\": [1]}\n"),
            ":1: field 'answer' must be a string or a number");
  EXPECT_EQ(error_of("\n  \n"), ": the dataset holds no question (one JSON object per line)");
  EXPECT_THROW(load_qa_jsonl("/nonexistent/data.jsonl"), Error);
}

TEST(TaskSampleJson, RoundTripsAndKeepsSixtyFourBitSeeds) {
  TaskSample s;
  s.task = "vt";
  s.index = 3;
  s.seed = 18446744073709551557ull;
  s.context = 4096;
  s.prompt = "p\n\"q\"";
  s.target = " A, B";
  s.answers = {"A", "B"};
  s.prompt_tokens = 4093;
  s.max_new_tokens = 12;
  s.prompt_ids = {5, 6, 7};
  s.target_ids = {8};
  const Json j = task_sample_to_json(s);
  EXPECT_EQ(j["seed"], "18446744073709551557");
  EXPECT_FALSE(j.contains("prompt_ids"));
  EXPECT_EQ(task_sample_to_json(task_sample_from_json(j, "x")), j);
  const Json with_ids = task_sample_to_json(s, /*with_ids=*/true);
  EXPECT_EQ(with_ids["prompt_ids"], Json::array({5, 6, 7}));
  const TaskSample back = task_sample_from_json(with_ids, "x");
  EXPECT_EQ(back.prompt_ids, s.prompt_ids);
  EXPECT_EQ(back.target_ids, s.target_ids);
}

TEST(TaskSampleJson, MissingOrIllTypedFieldsAreNamed) {
  TaskSample s;
  s.task = "vt";
  Json j = task_sample_to_json(s);
  Json missing = j;
  missing.erase("target");
  try {
    task_sample_from_json(missing, "dump.jsonl:4");
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "dump.jsonl:4: missing field 'target'");
  }
  Json bad_seed = j;
  bad_seed["seed"] = "12x";
  EXPECT_THROW(task_sample_from_json(bad_seed, "w"), Error);
  Json bad_answers = j;
  bad_answers["answers"] = Json::array({1});
  EXPECT_THROW(task_sample_from_json(bad_answers, "w"), Error);
  EXPECT_THROW(task_sample_from_json(Json::array(), "w"), Error);
  Json bad_ids = j;
  bad_ids["prompt_ids"] = Json::array({"x"});
  EXPECT_THROW(task_sample_from_json(bad_ids, "w"), Error);
}

}  // namespace
}  // namespace vortex::eval
