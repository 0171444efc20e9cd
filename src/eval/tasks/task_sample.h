// One generated sample of a synthetic task: what the model reads, what it should answer, and
// everything needed to regenerate it. `vortex eval --dump-tasks` writes these as JSON lines for
// the training script, so training and evaluation read one generator's output.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/json_file.h"

namespace vortex::eval {

struct TaskSample {
  std::string task;
  int64_t index = 0;
  uint64_t seed = 0;                 // this sample's own seed (sample_seed of the run's seed)
  int32_t context = 0;               // requested input tokens
  std::string prompt;                // the model input text (chat-rendered with `chat`)
  std::string target;                // the completion a perfect model writes (without eos)
  std::vector<std::string> answers;  // gold answers; scoring treats them as a set
  int32_t prompt_tokens = 0;         // input tokens of `prompt` (at most `context`)
  int32_t max_new_tokens = 0;        // generation budget: the target's tokens with room to spare
  bool chat = false;
  std::vector<int32_t> prompt_ids;  // the model input ids of `prompt`
  std::vector<int32_t> target_ids;  // ids of `target` (no special tokens)
};

// {"task", "index", "seed", "context", "prompt", "target", "answers", "prompt_tokens",
//  "max_new_tokens", "chat"}, and with `with_ids` also "prompt_ids" and "target_ids" (so a
// trainer uses Vortex's own token ids). The seed is written as a string, as JSON readers in
// other languages may not hold 64-bit integers exactly.
Json task_sample_to_json(const TaskSample& sample, bool with_ids = false);
// The inverse (ids optional); `where` (e.g. "file.jsonl:3") prefixes errors about missing or
// ill-typed fields.
TaskSample task_sample_from_json(const Json& j, const std::string& where);

}  // namespace vortex::eval
