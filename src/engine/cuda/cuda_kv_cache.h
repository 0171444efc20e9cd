// The paged KV cache in GPU memory: bf16 K and V, [layer][page][KV head][slot][head_dim] each,
// with one scratch page past the last (padding rows of CUDA graphs write there). Pages are
// handed out by the engine's PagePool (kv/page_pool.h), as for the CPU cache.
#pragma once

#include <cstdint>

#include "engine/cuda/cuda_util.h"
#include "kernels/cuda/attention.h"
#include "kv/kv_cache.h"

namespace vortex {

class CudaKvCache {
 public:
  // Throws vortex::Error if GPU memory runs out.
  CudaKvCache(const KvGeometry& geometry, int32_t num_pages);

  const KvGeometry& geometry() const { return geo_; }
  int32_t num_pages() const { return num_pages_; }
  int32_t scratch_page() const { return num_pages_; }
  // Elements between one layer's K (or V) and the next's.
  int64_t layer_stride() const;
  cuda::bf16_t* k_layer(int32_t layer) const {
    return k_.as<cuda::bf16_t>() + layer * layer_stride();
  }
  cuda::bf16_t* v_layer(int32_t layer) const {
    return v_.as<cuda::bf16_t>() + layer * layer_stride();
  }
  // Layer `layer` as the attention and summarize kernels read it.
  cuda::DevicePagedKv layer(int32_t layer) const;
  // K and V of one (layer, page, KV head) block as f32, [page_size, head_dim] each; synchronizes.
  void read_block(int32_t layer, int32_t page, int32_t kv_head, float* k, float* v) const;

 private:
  KvGeometry geo_;
  int32_t num_pages_;
  DeviceBuffer k_, v_;
};

}  // namespace vortex
