// Runs a set of prompts through the Engine as one continuous batch and times prefill and
// decode apart.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "engine/engine.h"

namespace vortex::eval {

struct EvalRequest {
  std::vector<int32_t> prompt;
  GenerationParams params;
};

struct EvalTiming {
  double seconds = 0;          // all steps
  double prefill_seconds = 0;  // steps that computed prompt tokens
  double decode_seconds = 0;   // steps that only decoded
  int64_t prefill_tokens = 0;  // prompt tokens computed (recompute after preemption included)
  int64_t decode_tokens = 0;
  int64_t generated_tokens = 0;  // tokens in the results
};

struct EvalRun {
  std::vector<GenerationResult> results;  // in the order of the requests
  EvalTiming timing;
};

// Queues every request on `engine` (which must be idle) and steps until all are done.
// `progress(done, total)` is called after each step with tokens computed so far and the most
// there can be (prompts plus generation budgets).
EvalRun run_eval_requests(Engine& engine, const std::vector<EvalRequest>& requests,
                          const std::function<void(int64_t, int64_t)>& progress = {});

}  // namespace vortex::eval
