// Per-page flow State on the GPU starts at zero: when a page receives its first token (slot 0),
// whatever an earlier owner of the physical page left in its State blocks is cleared, in every
// layer, so a State is per (request, page) as the flow language defines it.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace vortex::cuda {

// Zeroes block_floats floats at state + layer * layer_stride + (pages[i] * num_kv_heads + h) *
// block_floats for every layer < num_layers, KV head h and i < *num_pages (a device scalar; at
// most max_pages, the grid it is launched with).
cudaError_t reset_page_state(float* state, int64_t layer_stride, int32_t num_layers,
                             int32_t num_kv_heads, int32_t block_floats, const int32_t* pages,
                             const int32_t* num_pages, int32_t max_pages, cudaStream_t stream);

}  // namespace vortex::cuda
