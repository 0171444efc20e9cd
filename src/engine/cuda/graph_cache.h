// The CUDA graphs of decode-only steps, one per padded batch size (bucket), captured from a
// callable that enqueues the step; and the profiled twin of a bucket's graph (the same step
// with event records between its parts: step_timeline.h).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <vector>

#include "engine/cuda/step_timeline.h"

namespace vortex {

class GraphCache {
 public:
  GraphCache() = default;
  ~GraphCache() { clear(); }
  GraphCache(const GraphCache&) = delete;
  GraphCache& operator=(const GraphCache&) = delete;

  // The smallest bucket that holds n decode rows, or 0 when n is above max_graph_batch.
  static int32_t bucket_for(int32_t n, int32_t max_graph_batch);
  // The buckets a warm-up captures for batches up to max_batch: each up to the first that holds
  // max_batch, none above max_graph_batch.
  static std::vector<int32_t> buckets_up_to(int32_t max_batch, int32_t max_graph_batch);

  // Records what `enqueue` puts on `stream` (which must be idle of other captures) into a graph
  // and instantiates it. If `enqueue` throws, the capture is ended and the error passed on.
  cudaGraphExec_t capture(cudaStream_t stream, const std::function<void()>& enqueue);

  // The bucket's graph, captured from `enqueue` on first use.
  cudaGraphExec_t get(int32_t bucket, cudaStream_t stream, const std::function<void()>& enqueue);
  bool has(int32_t bucket) const { return graphs_.count(bucket) > 0; }
  // A bucket runs eagerly once (each kernel's first use outside any capture) before its graph.
  bool warmed(int32_t bucket) const { return warmed_.count(bucket) > 0; }
  void mark_warmed(int32_t bucket) { warmed_.insert(bucket); }

  struct Profiled {
    cudaGraphExec_t exec = nullptr;
    std::unique_ptr<StepTimeline> timeline;
  };
  // The bucket's profiled graph; its exec is null until captured.
  Profiled& profiled(int32_t bucket) { return profiled_[bucket]; }

  // Drops every graph (they hold buffer addresses that are about to change).
  void clear();
  int64_t captured() const { return captured_; }

 private:
  std::map<int32_t, cudaGraphExec_t> graphs_;
  std::map<int32_t, Profiled> profiled_;
  std::set<int32_t> warmed_;
  int64_t captured_ = 0;
};

}  // namespace vortex
