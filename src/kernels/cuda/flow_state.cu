#include "kernels/cuda/flow_state.h"

namespace vortex::cuda {
namespace {

__global__ void reset_page_state_kernel(float* state, int64_t layer_stride, int32_t num_layers,
                                        int32_t num_kv_heads, int32_t block_floats,
                                        const int32_t* pages, const int32_t* num_pages) {
  if (static_cast<int32_t>(blockIdx.x) >= *num_pages) return;
  const int64_t page_floats = int64_t{num_kv_heads} * block_floats;
  const int64_t base = int64_t{pages[blockIdx.x]} * page_floats;
  for (int32_t l = 0; l < num_layers; ++l) {
    float* p = state + l * layer_stride + base;
    for (int64_t i = threadIdx.x; i < page_floats; i += blockDim.x) p[i] = 0.0f;
  }
}

}  // namespace

cudaError_t reset_page_state(float* state, int64_t layer_stride, int32_t num_layers,
                             int32_t num_kv_heads, int32_t block_floats, const int32_t* pages,
                             const int32_t* num_pages, int32_t max_pages, cudaStream_t stream) {
  if (max_pages <= 0 || block_floats <= 0) return cudaSuccess;
  reset_page_state_kernel<<<max_pages, 128, 0, stream>>>(state, layer_stride, num_layers,
                                                         num_kv_heads, block_floats, pages,
                                                         num_pages);
  return cudaGetLastError();
}

}  // namespace vortex::cuda
