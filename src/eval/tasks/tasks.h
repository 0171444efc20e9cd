// The RULER-style synthetic tasks, generated deterministically from a seed at a requested input
// length measured with the model's own tokenizer:
//   niah_single      one "special magic number" needle; answer its 7-digit value
//   niah_multikey    four needles with different keys; answer the value of one key
//   niah_multivalue  four needles with the same key; answer all four values, in text order
//   vt               two chains of variable assignments (VAR A = 12345, VAR B = VAR A, ...,
//                    4 hops); answer every variable of the queried value's chain, in chain order
//   cwe              a list of words in which ten are far more frequent; answer those ten
// Each prompt is plain text ending with "Answer:", the target a comma-separated list after a
// space (no space in chat mode, where the assistant turn starts fresh).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "eval/tasks/prompt_encoder.h"
#include "eval/tasks/task_sample.h"

namespace vortex::eval {

// Every task name, in the order above.
const std::vector<std::string>& task_names();

// The task names of a comma-separated list ("all" = every task); throws a usage error naming
// the unknown task and listing the known ones.
std::vector<std::string> parse_task_list(const std::string& list);

// The sample of `task` for `sample_seed` at `context` input tokens. Throws vortex::Error when
// the task is unknown or the context too short for it.
TaskSample generate_task_sample(const std::string& task, int32_t context, uint64_t sample_seed,
                                const PromptEncoder& encoder);

// `samples` samples of each task (seeds from sample_seed(seed, task, index)), ordered by task
// then index; generated on the global thread pool, identical for any thread count.
std::vector<TaskSample> generate_task_samples(const std::vector<std::string>& tasks,
                                              int32_t context, int32_t samples, uint64_t seed,
                                              const PromptEncoder& encoder);

}  // namespace vortex::eval
