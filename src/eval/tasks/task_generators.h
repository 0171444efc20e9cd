// The generators behind tasks.h, one per task. Each returns the prompt body (before any chat
// wrapping) and the gold answers in the order the target lists them; `variant` is read only by
// the tasks it names.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/rng.h"
#include "eval/tasks/prompt_encoder.h"
#include "eval/tasks/tasks.h"

namespace vortex::eval {

struct TaskBody {
  std::string body;
  std::vector<std::string> answers;
};

TaskBody make_niah_single(int32_t context, Rng& rng, const PromptEncoder& encoder,
                          const TaskVariant& variant);
TaskBody make_niah_multikey(int32_t context, Rng& rng, const PromptEncoder& encoder,
                            const TaskVariant& variant);
TaskBody make_niah_multivalue(int32_t context, Rng& rng, const PromptEncoder& encoder,
                              const TaskVariant& variant);
TaskBody make_variable_tracking(int32_t context, Rng& rng, const PromptEncoder& encoder,
                                const TaskVariant& variant);
TaskBody make_common_words(int32_t context, Rng& rng, const PromptEncoder& encoder,
                           const TaskVariant& variant);

}  // namespace vortex::eval
