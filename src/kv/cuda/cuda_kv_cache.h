// The paged KV cache in GPU memory, beside the CPU one (kv_cache.h): bf16 K and V,
// [layer][page][KV head][slot][head_dim] each (the CPU cache's layout), with one scratch page
// past the last (padding rows of CUDA graphs write there). Pages are handed out by the engine's
// PagePool (kv/page_pool.h), as for the CPU cache. Built only with the CUDA backend.
#pragma once

#include <cstdint>

#include "core/cuda/cuda_util.h"
#include "kv/kv_cache.h"

namespace vortex {

class CudaKvCache {
 public:
  // Throws vortex::Error if GPU memory runs out.
  CudaKvCache(const KvGeometry& geometry, int32_t num_pages);

  const KvGeometry& geometry() const { return geo_; }
  int32_t num_pages() const { return num_pages_; }
  int32_t scratch_page() const { return num_pages_; }
  // Elements between one layer's K (or V) and the next's, one page's and one KV head's.
  int64_t layer_stride() const;
  int64_t page_stride() const {
    return int64_t{geo_.num_kv_heads} * geo_.page_size * geo_.head_dim;
  }
  int64_t head_stride() const { return int64_t{geo_.page_size} * geo_.head_dim; }
  // Layer `layer`'s K and V (bf16 bits).
  uint16_t* k_layer(int32_t layer) const { return k_.as<uint16_t>() + layer * layer_stride(); }
  uint16_t* v_layer(int32_t layer) const { return v_.as<uint16_t>() + layer * layer_stride(); }
  // K and V of one (layer, page, KV head) block as f32, [page_size, head_dim] each. Uses
  // synchronous copies on the default stream: the caller synchronizes its own stream first.
  void read_block(int32_t layer, int32_t page, int32_t kv_head, float* k, float* v) const;

 private:
  KvGeometry geo_;
  int32_t num_pages_;
  DeviceBuffer k_, v_;
};

}  // namespace vortex
