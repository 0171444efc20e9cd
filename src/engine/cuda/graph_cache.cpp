#include "engine/cuda/graph_cache.h"

#include "core/cuda/cuda_util.h"

namespace vortex {
namespace {

// Padded decode batch sizes that get a CUDA graph each.
constexpr int32_t kBuckets[] = {1,  2,  4,   8,   12,  16,  24,  32,  40,  48,  56,  64,
                                80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448, 512};

}  // namespace

int32_t GraphCache::bucket_for(int32_t n, int32_t max_graph_batch) {
  if (n <= 0 || n > max_graph_batch) return 0;
  for (int32_t b : kBuckets) {
    if (b >= n) return b;
  }
  return 0;
}

std::vector<int32_t> GraphCache::buckets_up_to(int32_t max_batch, int32_t max_graph_batch) {
  std::vector<int32_t> out;
  if (max_batch <= 0) return out;
  for (int32_t b : kBuckets) {
    if (b > max_graph_batch) break;
    out.push_back(b);
    if (b >= max_batch) break;
  }
  return out;
}

cudaGraphExec_t GraphCache::capture(cudaStream_t stream, const std::function<void()>& enqueue) {
  cudaGraph_t graph = nullptr;
  check_cuda(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), "graph capture");
  try {
    enqueue();
  } catch (...) {
    cudaStreamEndCapture(stream, &graph);
    if (graph) cudaGraphDestroy(graph);
    throw;
  }
  check_cuda(cudaStreamEndCapture(stream, &graph), "graph capture");
  cudaGraphExec_t exec = nullptr;
  cudaError_t err = cudaGraphInstantiate(&exec, graph, 0);
  cudaGraphDestroy(graph);
  check_cuda(err, "graph instantiation");
  ++captured_;
  return exec;
}

cudaGraphExec_t GraphCache::get(int32_t bucket, cudaStream_t stream,
                                const std::function<void()>& enqueue) {
  auto it = graphs_.find(bucket);
  if (it == graphs_.end()) it = graphs_.emplace(bucket, capture(stream, enqueue)).first;
  return it->second;
}

void GraphCache::clear() {
  for (auto& [bucket, exec] : graphs_) cudaGraphExecDestroy(exec);
  graphs_.clear();
  for (auto& [bucket, p] : profiled_)
    if (p.exec) cudaGraphExecDestroy(p.exec);
  profiled_.clear();
  warmed_.clear();
}

}  // namespace vortex
