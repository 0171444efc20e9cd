// One generation request as the scheduler and the step loop see it: its tokens, how many of them
// have KV in the cache, and the pages that hold that KV.
#pragma once

#include <cstdint>
#include <vector>

#include "core/error.h"
#include "kv/block_table.h"

namespace vortex {

enum class RequestState { kWaiting, kRunning, kFinished };

struct Request {
  int64_t id = 0;
  std::vector<int32_t> prompt;
  std::vector<int32_t> output;  // generated tokens so far (kept across preemption)
  int32_t num_computed = 0;     // tokens of prompt+output whose KV is in the cache
  BlockTable blocks;
  RequestState state = RequestState::kWaiting;
  int32_t num_preemptions = 0;
  // Full attention for this request even where the engine runs a flow (GenerationParams::flow
  // "dense"): its decode rows read every page, in the same batches as the flow's rows.
  bool dense = false;

  int32_t seq_len() const { return static_cast<int32_t>(prompt.size() + output.size()); }
  // Token i of the sequence: the prompt, then the output.
  int32_t token_at(int32_t i) const {
    VORTEX_ASSERT(i >= 0 && i < seq_len());
    auto n = static_cast<int32_t>(prompt.size());
    return i < n ? prompt[static_cast<size_t>(i)] : output[static_cast<size_t>(i - n)];
  }
};

}  // namespace vortex
