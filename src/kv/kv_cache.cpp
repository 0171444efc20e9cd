#include "kv/kv_cache.h"

#include <limits>

#include "core/error.h"

namespace vortex {
namespace {

// calloc rather than new[]: a large cache is zeroed page by page on first touch by the OS
// instead of up front.
float* allocate_zeroed(int64_t count, const char* what) {
  auto* p = static_cast<float*>(std::calloc(static_cast<size_t>(count), sizeof(float)));
  if (p == nullptr) {
    fail("kv cache: cannot allocate ", what, " storage of ",
         static_cast<double>(count) * sizeof(float) / (1 << 20), " MiB");
  }
  return p;
}

}  // namespace

void validate_kv_geometry(const KvGeometry& g) {
  auto require_positive = [](int32_t value, const char* field) {
    if (value < 1) fail("kv geometry: ", field, " must be positive, got ", value);
  };
  require_positive(g.num_layers, "num_layers");
  require_positive(g.num_kv_heads, "num_kv_heads");
  require_positive(g.head_dim, "head_dim");
  require_positive(g.page_size, "page_size");
  if ((g.page_size & (g.page_size - 1)) != 0) {
    fail("kv geometry: page_size must be a power of two, got ", g.page_size);
  }
}

KvCache::KvCache(const KvGeometry& geometry, int32_t num_pages)
    : geometry_(geometry), num_pages_(num_pages) {
  validate_kv_geometry(geometry_);
  if (num_pages < 1) fail("kv cache: num_pages must be at least 1, got ", num_pages);
  // Each of K and V holds num_layers * num_pages * page_stride floats; check that fits int64
  // before multiplying (a 70B-class model with a huge pool is the case that would overflow).
  int64_t per_layer = static_cast<int64_t>(num_pages) * page_stride();
  if (per_layer > std::numeric_limits<int64_t>::max() / geometry_.num_layers) {
    fail("kv cache: ", num_pages, " pages of this geometry overflow the address space");
  }
  int64_t count = per_layer * geometry_.num_layers;
  k_.reset(allocate_zeroed(count, "K"));
  v_.reset(allocate_zeroed(count, "V"));
}

int64_t KvCache::page_stride() const {
  return static_cast<int64_t>(geometry_.num_kv_heads) * head_stride();
}

int64_t KvCache::head_stride() const {
  return static_cast<int64_t>(geometry_.page_size) * geometry_.head_dim;
}

size_t KvCache::bytes_per_page(const KvGeometry& g) {
  validate_kv_geometry(g);
  return 2 * static_cast<size_t>(g.num_layers) * static_cast<size_t>(g.num_kv_heads) *
         static_cast<size_t>(g.page_size) * static_cast<size_t>(g.head_dim) * sizeof(float);
}

int64_t KvCache::layer_offset(int32_t layer) const {
  VORTEX_ASSERT(layer >= 0 && layer < geometry_.num_layers);
  return static_cast<int64_t>(layer) * num_pages_ * page_stride();
}

int64_t KvCache::block_offset(int32_t layer, int32_t page, int32_t kv_head) const {
  VORTEX_ASSERT(page >= 0 && page < num_pages_);
  VORTEX_ASSERT(kv_head >= 0 && kv_head < geometry_.num_kv_heads);
  return layer_offset(layer) + page * page_stride() + kv_head * head_stride();
}

float* KvCache::k_layer(int32_t layer) {
  return k_.get() + layer_offset(layer);
}
float* KvCache::v_layer(int32_t layer) {
  return v_.get() + layer_offset(layer);
}
const float* KvCache::k_layer(int32_t layer) const {
  return k_.get() + layer_offset(layer);
}
const float* KvCache::v_layer(int32_t layer) const {
  return v_.get() + layer_offset(layer);
}

float* KvCache::k_block(int32_t layer, int32_t page, int32_t kv_head) {
  return k_.get() + block_offset(layer, page, kv_head);
}
float* KvCache::v_block(int32_t layer, int32_t page, int32_t kv_head) {
  return v_.get() + block_offset(layer, page, kv_head);
}

}  // namespace vortex
