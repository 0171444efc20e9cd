#include "engine/model_runner.h"

#include "core/error.h"
#include "engine/cpu/cpu_model_runner.h"
#ifdef VORTEX_WITH_CUDA
#include "engine/cuda/cuda_model_runner.h"
#endif

namespace vortex {

void ModelRunner::set_flows(std::vector<std::shared_ptr<const SparseAttentionConfig>> flows) {
  if (flows.empty()) return;
  fail("sparse attention flows do not run on ", device_name(device()),
       " yet: use --device cpu with --flow");
}

void ModelRunner::add_flow(std::shared_ptr<const SparseAttentionConfig> flow, size_t index) {
  fail("flows cannot be added to a running engine on ", device_name(device()),
       " yet: load them at start (--flow) or serve on the CPU");
}

size_t kv_bytes_per_page(Device device, const KvGeometry& geometry) {
  if (device == Device::kCpu) return KvCache::bytes_per_page(geometry);
  // bf16 K and V on the GPU.
  return KvCache::bytes_per_page(geometry) / 2;
}

std::unique_ptr<ModelRunner> make_model_runner(Device device, const LoadedModel& model,
                                               const KvGeometry& geometry, int32_t num_pages,
                                               const RunnerOptions& options) {
  if (device == Device::kCpu) return std::make_unique<CpuModelRunner>(model, geometry, num_pages);
#ifdef VORTEX_WITH_CUDA
  return std::make_unique<CudaModelRunner>(model, geometry, num_pages, options);
#else
  (void)options;
#endif
  fail("this build of vortex has no CUDA backend: use --device cpu");
}

}  // namespace vortex
