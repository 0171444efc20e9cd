// Accuracy summaries: per task for the synthetic suite, mean@k and pass@k for datasets.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "eval/tasks/task_sample.h"

namespace vortex::eval {

struct TaskScore {
  std::string task;
  int64_t samples = 0;
  double accuracy = 0;  // mean sample score
  double prompt_tokens_mean = 0;
};

struct TaskReport {
  std::vector<TaskScore> tasks;  // in the order the tasks first appear in the samples
  double accuracy = 0;           // mean of the task accuracies (each task weighs the same)
  int64_t samples = 0;
};

// `scores[i]` is the score of `samples[i]` (same length, else vortex::Error).
TaskReport summarize_task_scores(const std::vector<TaskSample>& samples,
                                 const std::vector<double>& scores);

struct QaReport {
  int64_t problems = 0;
  int64_t trials = 0;    // K, per problem
  double mean_at_k = 0;  // mean over problems of the fraction of correct trials
  double pass_at_k = 0;  // mean over problems of "at least one of the K trials is correct"
  double pass_at_1 = 0;  // unbiased pass@1 (equals mean@K)
};

// `correct[p]` is how many of problem p's `trials` trials were correct.
QaReport summarize_qa(const std::vector<int64_t>& correct, int64_t trials);

}  // namespace vortex::eval
