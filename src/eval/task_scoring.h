// Scoring the synthetic tasks. A completion is split into items at every character that is not
// a letter, digit or '-' ("The numbers are 123, 456." -> the, numbers, are, 123, 456), items and
// answers compared case-insensitively. A sample scores the fraction of its gold answers found
// among the items (partial credit on multi-answer tasks; 0 or 1 on single-answer ones). The
// generation budget (the target's length plus a small margin) keeps a model from listing every
// candidate.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace vortex::eval {

// The normalised items of a completion, in order (duplicates kept).
std::vector<std::string> completion_items(std::string_view completion);

// The fraction of `answers` found among the completion's items, in [0, 1]; 0 when `answers` is
// empty.
double score_task_completion(std::string_view completion, const std::vector<std::string>& answers);

}  // namespace vortex::eval
