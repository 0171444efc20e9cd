// One generation request as the scheduler and the step loop see it: its tokens, how many of them
// have KV in the cache, and the pages that hold that KV.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "core/error.h"
#include "flow/ir.h"
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
  // The flow of this request's decode rows: an index into the runner's flows (the order of
  // ModelRunner::set_flows), or kDenseFlow for full attention (every page read), in the same
  // batches as other flows' rows.
  static constexpr int32_t kDenseFlow = -1;
  int32_t flow = kDenseFlow;
  // The budget its flow's rows follow when the request overrides the flow's (null: the flow's
  // own policy). Never changes dense_layers: which layers are sparse is the flow's.
  std::shared_ptr<const flow::BudgetPolicy> budget;

  bool dense() const { return flow == kDenseFlow; }

  int32_t seq_len() const { return static_cast<int32_t>(prompt.size() + output.size()); }
  // Token i of the sequence: the prompt, then the output.
  int32_t token_at(int32_t i) const {
    VORTEX_ASSERT(i >= 0 && i < seq_len());
    auto n = static_cast<int32_t>(prompt.size());
    return i < n ? prompt[static_cast<size_t>(i)] : output[static_cast<size_t>(i - n)];
  }
};

}  // namespace vortex
