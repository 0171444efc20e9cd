#include "eval/eval_runner.h"

#include <algorithm>
#include <map>

#include "core/error.h"

namespace vortex::eval {

EvalRun run_eval_requests(Engine& engine, const std::vector<EvalRequest>& requests,
                          const std::function<void(int64_t, int64_t)>& progress) {
  VORTEX_ASSERT(!engine.has_unfinished());
  std::map<int64_t, size_t> index_of;
  int64_t total = 0;
  for (size_t i = 0; i < requests.size(); ++i) {
    index_of[engine.add_request(requests[i].prompt, requests[i].params)] = i;
    total += static_cast<int64_t>(requests[i].prompt.size()) + requests[i].params.max_tokens;
  }
  EvalRun run;
  run.results.resize(requests.size());
  int64_t done = 0;
  while (engine.has_unfinished()) {
    for (GenerationResult& r : engine.step()) {
      run.timing.generated_tokens += static_cast<int64_t>(r.token_ids.size());
      run.results[index_of.at(r.id)] = std::move(r);
    }
    const StepInfo& s = engine.last_step();
    run.timing.seconds += s.seconds;
    if (s.prefill_tokens > 0) {
      run.timing.prefill_seconds += s.seconds;
    } else {
      run.timing.decode_seconds += s.seconds;
    }
    run.timing.prefill_tokens += s.prefill_tokens;
    run.timing.decode_tokens += s.decode_tokens;
    done += s.prefill_tokens + s.decode_tokens;
    if (progress) progress(std::min(done, total), total);
  }
  // Requests that stop early leave the count short of the budget; the run is complete.
  if (progress) progress(total, total);
  return run;
}

}  // namespace vortex::eval
