#include "kv/cuda/cuda_kv_cache.h"

#include <vector>

#include "core/dtype.h"
#include "core/error.h"

namespace vortex {

CudaKvCache::CudaKvCache(const KvGeometry& geometry, int32_t num_pages)
    : geo_(geometry), num_pages_(num_pages) {
  const size_t bytes = static_cast<size_t>(geo_.num_layers) * layer_stride() * sizeof(uint16_t);
  k_ = DeviceBuffer(bytes, "the K cache");
  v_ = DeviceBuffer(bytes, "the V cache");
}

int64_t CudaKvCache::layer_stride() const {
  return int64_t{num_pages_ + 1} * geo_.num_kv_heads * geo_.page_size * geo_.head_dim;
}

void CudaKvCache::read_block(int32_t layer, int32_t page, int32_t kv_head, float* k,
                             float* v) const {
  VORTEX_ASSERT(layer >= 0 && layer < geo_.num_layers && page >= 0 && page < num_pages_ &&
                kv_head >= 0 && kv_head < geo_.num_kv_heads);
  const size_t n = static_cast<size_t>(geo_.page_size) * geo_.head_dim;
  const int64_t off = (int64_t{page} * geo_.num_kv_heads + kv_head) * static_cast<int64_t>(n);
  std::vector<uint16_t> buf(n);
  for (int which = 0; which < 2; ++which) {
    const uint16_t* src = (which == 0 ? k_layer(layer) : v_layer(layer)) + off;
    check_cuda(cudaMemcpy(buf.data(), src, n * 2, cudaMemcpyDeviceToHost), "read_kv_block");
    float* dst = which == 0 ? k : v;
    for (size_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(buf[i]);
  }
}

}  // namespace vortex
