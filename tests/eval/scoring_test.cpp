// Scoring of task completions and of free-form final answers.
#include <gtest/gtest.h>

#include "core/error.h"
#include "eval/eval_report.h"
#include "eval/final_answer.h"
#include "eval/pass_at_k.h"
#include "eval/task_scoring.h"

namespace vortex::eval {
namespace {

TEST(TaskScoring, ItemsSplitAtPunctuationAndIgnoreCase) {
  EXPECT_EQ(completion_items(" 4821937"), std::vector<std::string>{"4821937"});
  EXPECT_EQ(completion_items("The numbers: 12, 34.\n- 56"),
            (std::vector<std::string>{"the", "numbers", "12", "34", "56"}));
  EXPECT_EQ(completion_items("quiet-harbor -7"), (std::vector<std::string>{"quiet-harbor", "7"}));
  EXPECT_TRUE(completion_items("  ,.;  ").empty());
}

TEST(TaskScoring, SingleAnswerIsExactMatchOfAnItem) {
  EXPECT_EQ(score_task_completion(" 4821937", {"4821937"}), 1.0);
  EXPECT_EQ(score_task_completion("The special magic number is 4821937.", {"4821937"}), 1.0);
  EXPECT_EQ(score_task_completion(" 48219370", {"4821937"}), 0.0);  // no substring credit
  EXPECT_EQ(score_task_completion(" 482193", {"4821937"}), 0.0);
  EXPECT_EQ(score_task_completion("", {"4821937"}), 0.0);
  EXPECT_EQ(score_task_completion(" xlbbt", {"XLBBT"}), 1.0);  // case ignored
  EXPECT_EQ(score_task_completion(" anything", {}), 0.0);
}

TEST(TaskScoring, MultiAnswerScoresTheFractionFoundInAnyOrder) {
  const std::vector<std::string> gold = {"11", "22", "33", "44"};
  EXPECT_EQ(score_task_completion(" 11, 22, 33, 44", gold), 1.0);
  EXPECT_EQ(score_task_completion(" 44, 33, 22, 11", gold), 1.0);
  EXPECT_EQ(score_task_completion(" 11, 22, 99", gold), 0.5);
  EXPECT_EQ(score_task_completion(" 11 11 11 11", gold), 0.25);
}

TEST(FinalAnswer, BoxedContentKeepsNestedBraces) {
  EXPECT_EQ(extract_final_answer("so \\boxed{42}."), "42");
  EXPECT_EQ(extract_final_answer("\\boxed{\\frac{1}{2}}"), "\\frac{1}{2}");
  EXPECT_EQ(extract_final_answer("first \\boxed{1} then \\boxed{\\sqrt{3}}"), "\\sqrt{3}");
  EXPECT_EQ(extract_final_answer("\\fbox{7} and 9"), "7");
  EXPECT_EQ(extract_final_answer("$\\boxed 12$"), "12");
}

TEST(FinalAnswer, WithoutABoxTheLastNumberCounts) {
  EXPECT_EQ(extract_final_answer("3 apples and 1,234 pears"), "1,234");
  EXPECT_EQ(extract_final_answer("the answer is -17."), "-17");
  EXPECT_EQ(extract_final_answer("x = 2.50 m"), "2.50");
  EXPECT_EQ(extract_final_answer("a list 1,2,3"), "3");
  // An unclosed box falls back to the last number.
  EXPECT_EQ(extract_final_answer("\\boxed{12 and then 13"), "13");
  EXPECT_EQ(extract_final_answer("no digits here"), std::nullopt);
  EXPECT_EQ(extract_final_answer(""), std::nullopt);
}

TEST(FinalAnswer, NormalisationMakesEquivalentFormsEqual) {
  EXPECT_TRUE(final_answers_match("042", "42"));
  EXPECT_TRUE(final_answers_match("$42$", "42"));
  EXPECT_TRUE(final_answers_match("1,000", "1000"));
  EXPECT_TRUE(final_answers_match("2.50", "2.5"));
  EXPECT_TRUE(final_answers_match("12.0", "12"));
  EXPECT_TRUE(final_answers_match("+3", "3"));
  EXPECT_TRUE(final_answers_match("-0", "0"));
  EXPECT_TRUE(final_answers_match("\\text{42}", "42"));
  EXPECT_TRUE(final_answers_match("90^\\circ", "90"));
  EXPECT_TRUE(final_answers_match("\\dfrac{1}{2}", "\\frac{1}{2}"));
  EXPECT_TRUE(final_answers_match("\\left( 1, 2 \\right)", "(1,2)"));
  EXPECT_TRUE(final_answers_match("Yes.", "yes"));
  EXPECT_FALSE(final_answers_match("42", "24"));
  EXPECT_FALSE(final_answers_match("-42", "42"));
  EXPECT_FALSE(final_answers_match("1,00", "100"));  // not a thousands group
  EXPECT_FALSE(final_answers_match("4.2", "42"));
}

TEST(PassAtK, MatchesTheClosedForm) {
  EXPECT_DOUBLE_EQ(pass_at_k(5, 0, 1), 0.0);
  EXPECT_DOUBLE_EQ(pass_at_k(5, 1, 1), 0.2);
  EXPECT_DOUBLE_EQ(pass_at_k(5, 5, 3), 1.0);
  EXPECT_DOUBLE_EQ(pass_at_k(4, 1, 4), 1.0);
  EXPECT_DOUBLE_EQ(pass_at_k(4, 0, 4), 0.0);
  // 1 - C(2,2)/C(4,2) = 1 - 1/6.
  EXPECT_NEAR(pass_at_k(4, 2, 2), 5.0 / 6.0, 1e-12);
  EXPECT_THROW(pass_at_k(4, 5, 1), Error);
  EXPECT_THROW(pass_at_k(4, 1, 5), Error);
  EXPECT_THROW(pass_at_k(0, 0, 1), Error);
}

TEST(Reports, TaskAccuracyIsPerTaskThenAveragedOverTasks) {
  std::vector<TaskSample> samples(5);
  samples[0].task = samples[1].task = samples[2].task = "a";
  samples[3].task = samples[4].task = "b";
  for (size_t i = 0; i < samples.size(); ++i)
    samples[i].prompt_tokens = 100 + static_cast<int32_t>(i);
  const TaskReport r = summarize_task_scores(samples, {1, 1, 0, 0.5, 0});
  ASSERT_EQ(r.tasks.size(), 2u);
  EXPECT_EQ(r.tasks[0].task, "a");
  EXPECT_DOUBLE_EQ(r.tasks[0].accuracy, 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(r.tasks[0].prompt_tokens_mean, 101.0);
  EXPECT_DOUBLE_EQ(r.tasks[1].accuracy, 0.25);
  EXPECT_DOUBLE_EQ(r.accuracy, (2.0 / 3.0 + 0.25) / 2);
  EXPECT_EQ(r.samples, 5);
  EXPECT_THROW(summarize_task_scores(samples, {1}), Error);
}

TEST(Reports, MeanAndPassAtKOverProblems) {
  const QaReport r = summarize_qa({0, 2, 4}, 4);
  EXPECT_EQ(r.problems, 3);
  EXPECT_DOUBLE_EQ(r.mean_at_k, (0 + 0.5 + 1) / 3);
  EXPECT_DOUBLE_EQ(r.pass_at_k, 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(r.pass_at_1, r.mean_at_k);
}

}  // namespace
}  // namespace vortex::eval
