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

// Variants of a task's difficulty for training curricula. Evaluation uses the defaults (the
// shapes described above, as RULER's); a training run may ask for easier or harder versions from
// the same generator, e.g. more distractor chains so that more of a `vt` answer's loss rides on
// choosing the right chain.
struct TaskVariant {
  int32_t vt_chains = 2;  // chains of assignments in vt: the queried one and the distractors
  int32_t vt_hops = 4;    // assignments after the first in each chain (hops + 1 variables)
  int32_t vt_value_digits = 5;  // digits of each chain's value (the question names the value)
};

// Checks a variant's ranges (vt_chains 1..8, vt_hops 0..16, vt_value_digits 1..9); throws a
// usage error naming the field.
void check_task_variant(const TaskVariant& v);

// Every task name, in the order above.
const std::vector<std::string>& task_names();

// The task names of a comma-separated list ("all" = every task); throws a usage error naming
// the unknown task and listing the known ones.
std::vector<std::string> parse_task_list(const std::string& list);

// The sample of `task` for `sample_seed` at `context` input tokens. Throws vortex::Error when
// the task is unknown or the context too short for it.
TaskSample generate_task_sample(const std::string& task, int32_t context, uint64_t sample_seed,
                                const PromptEncoder& encoder, const TaskVariant& variant = {});

// `samples` samples of each task (seeds from sample_seed(seed, task, index)), ordered by task
// then index; generated on the global thread pool, identical for any thread count.
std::vector<TaskSample> generate_task_samples(const std::vector<std::string>& tasks,
                                              int32_t context, int32_t samples, uint64_t seed,
                                              const PromptEncoder& encoder,
                                              const TaskVariant& variant = {});

}  // namespace vortex::eval
