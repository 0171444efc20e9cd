// The profiling timeline of a sparse decode step: CUDA events around its parts (plan,
// summarize, score, select, sparse and dense attention), recorded while the step is captured
// into its own CUDA graph (as event-record nodes), so the parts are timed as they run in a
// graph. Read after each replay synchronizes.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <utility>
#include <vector>

namespace vortex {

enum StepPart {
  kPartPlan,
  kPartSummarize,
  kPartScore,
  kPartSelect,
  kPartSparseAttention,
  kPartDenseAttention,
  kPartStep,
  kStepParts
};

class StepTimeline {
 public:
  StepTimeline() = default;
  ~StepTimeline();
  StepTimeline(const StepTimeline&) = delete;
  StepTimeline& operator=(const StepTimeline&) = delete;

  // Spans of one part may not nest (kPartStep is kept apart: it encloses the others).
  void begin(StepPart part, cudaStream_t stream);
  void end(cudaStream_t stream);
  void end_step(cudaStream_t stream);
  // Adds each part's seconds of the last replay to out[part].
  void collect(double* out) const;

 private:
  struct Span {
    StepPart part;
    size_t start, end;
  };
  size_t record(cudaStream_t stream);

  std::vector<cudaEvent_t> pool_;
  size_t used_ = 0;
  std::pair<StepPart, size_t> open_{kPartStep, 0};
  size_t step_open_ = 0;
  std::vector<Span> spans_;
};

}  // namespace vortex
