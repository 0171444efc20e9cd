#include "eval/eval_report.h"

#include <algorithm>

#include "core/error.h"
#include "eval/pass_at_k.h"

namespace vortex::eval {

TaskReport summarize_task_scores(const std::vector<TaskSample>& samples,
                                 const std::vector<double>& scores) {
  if (samples.size() != scores.size()) {
    fail("internal error: ", samples.size(), " samples but ", scores.size(), " scores");
  }
  TaskReport report;
  std::vector<double> token_sums;
  for (size_t i = 0; i < samples.size(); ++i) {
    auto it = std::find_if(report.tasks.begin(), report.tasks.end(),
                           [&](const TaskScore& t) { return t.task == samples[i].task; });
    if (it == report.tasks.end()) {
      report.tasks.push_back({samples[i].task, 0, 0, 0});
      token_sums.push_back(0);
      it = report.tasks.end() - 1;
    }
    it->samples += 1;
    it->accuracy += scores[i];
    token_sums[static_cast<size_t>(it - report.tasks.begin())] += samples[i].prompt_tokens;
  }
  for (size_t t = 0; t < report.tasks.size(); ++t) {
    TaskScore& s = report.tasks[t];
    s.accuracy /= static_cast<double>(s.samples);
    s.prompt_tokens_mean = token_sums[t] / static_cast<double>(s.samples);
    report.accuracy += s.accuracy;
    report.samples += s.samples;
  }
  if (!report.tasks.empty()) report.accuracy /= static_cast<double>(report.tasks.size());
  return report;
}

QaReport summarize_qa(const std::vector<int64_t>& correct, int64_t trials) {
  QaReport r;
  r.problems = static_cast<int64_t>(correct.size());
  r.trials = trials;
  if (correct.empty()) return r;
  for (int64_t c : correct) {
    r.mean_at_k += static_cast<double>(c) / static_cast<double>(trials);
    r.pass_at_k += pass_at_k(trials, c, trials);
    r.pass_at_1 += pass_at_k(trials, c, 1);
  }
  const auto n = static_cast<double>(correct.size());
  r.mean_at_k /= n;
  r.pass_at_k /= n;
  r.pass_at_1 /= n;
  return r;
}

}  // namespace vortex::eval
