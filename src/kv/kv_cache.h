// Host storage of K and V for every layer. Page-major: within a layer, one (page, KV head) is a
// contiguous [P, D] block, which is what a flow's summarize and the paged attention kernels read
// (DESIGN.md §3). Per-page flow fields will live beside this, indexed by the same page numbers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>

namespace vortex {

struct KvGeometry {
  int32_t num_layers = 0;
  int32_t num_kv_heads = 0;
  int32_t head_dim = 0;
  int32_t page_size = 0;
};

// Throws vortex::Error naming the bad field unless every dimension is positive and page_size is
// a power of two.
void validate_kv_geometry(const KvGeometry& geometry);

class KvCache {
 public:
  // f32 storage for num_pages pages, zero-filled (lazily, by the OS, for large caches).
  KvCache(const KvGeometry& geometry, int32_t num_pages);

  const KvGeometry& geometry() const { return geometry_; }
  int32_t num_pages() const { return num_pages_; }

  // One layer's keys or values, laid out [num_pages][Hkv][P][D].
  float* k_layer(int32_t layer);
  float* v_layer(int32_t layer);
  const float* k_layer(int32_t layer) const;
  const float* v_layer(int32_t layer) const;
  // The [P, D] block of one (layer, page, KV head).
  float* k_block(int32_t layer, int32_t page, int32_t kv_head);
  float* v_block(int32_t layer, int32_t page, int32_t kv_head);

  int64_t page_stride() const;  // floats between pages of a layer: Hkv * P * D
  int64_t head_stride() const;  // floats between KV heads of a page: P * D
  // K and V of one page over all layers, in bytes.
  static size_t bytes_per_page(const KvGeometry& geometry);

 private:
  struct FreeDeleter {
    void operator()(float* p) const { std::free(p); }
  };
  using Buffer = std::unique_ptr<float, FreeDeleter>;

  int64_t layer_offset(int32_t layer) const;
  int64_t block_offset(int32_t layer, int32_t page, int32_t kv_head) const;

  KvGeometry geometry_;
  int32_t num_pages_;
  Buffer k_;
  Buffer v_;
};

}  // namespace vortex
