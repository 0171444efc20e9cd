#include "engine/cuda/step_timeline.h"

#include "core/cuda/cuda_util.h"

namespace vortex {

StepTimeline::~StepTimeline() {
  for (cudaEvent_t e : pool_) cudaEventDestroy(e);
}

void StepTimeline::begin(StepPart part, cudaStream_t stream) {
  if (part == kPartStep)
    step_open_ = record(stream);
  else
    open_ = {part, record(stream)};
}

void StepTimeline::end(cudaStream_t stream) {
  spans_.push_back({open_.first, open_.second, record(stream)});
}

void StepTimeline::end_step(cudaStream_t stream) {
  spans_.push_back({kPartStep, step_open_, record(stream)});
}

void StepTimeline::collect(double* out) const {
  for (const Span& s : spans_) {
    float ms = 0;
    check_cuda(cudaEventElapsedTime(&ms, pool_[s.start], pool_[s.end]), "profile events");
    out[s.part] += ms * 1e-3;
  }
}

size_t StepTimeline::record(cudaStream_t stream) {
  if (used_ == pool_.size()) {
    cudaEvent_t e = nullptr;
    check_cuda(cudaEventCreate(&e), "profile events");
    pool_.push_back(e);
  }
  check_cuda(cudaEventRecordWithFlags(pool_[used_], stream, cudaEventRecordExternal),
             "profile events");
  return used_++;
}

}  // namespace vortex
