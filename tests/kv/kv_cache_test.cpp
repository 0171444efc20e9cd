#include "kv/kv_cache.h"

#include <gtest/gtest.h>

#include <string>

#include "core/error.h"

namespace vortex {
namespace {

KvGeometry small_geometry() {
  return KvGeometry{3, 2, 8, 4};
}  // L, Hkv, D, P

std::string error_of(const KvGeometry& g) {
  try {
    KvCache cache(g, 2);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(KvCache, StridesArePageMajorWithContiguousHeadBlocks) {
  KvCache cache(small_geometry(), 5);
  EXPECT_EQ(cache.head_stride(), 4 * 8);
  EXPECT_EQ(cache.page_stride(), 2 * 4 * 8);
  EXPECT_EQ(cache.num_pages(), 5);
  float* layer = cache.k_layer(1);
  EXPECT_EQ(cache.k_block(1, 3, 1), layer + 3 * cache.page_stride() + 1 * cache.head_stride());
  EXPECT_EQ(cache.v_block(2, 0, 0), cache.v_layer(2));
  EXPECT_EQ(cache.k_layer(1) - cache.k_layer(0), 5 * cache.page_stride());
}

TEST(KvCache, StartsZeroedAndEveryElementHasItsOwnSlot) {
  const KvGeometry g = small_geometry();
  const int32_t pages = 3;
  KvCache cache(g, pages);
  // Write a value that names (K or V, layer, page, head, slot, dim) into every element through
  // the layer pointers, then read it back through the block pointers: any aliasing shows up.
  auto code = [&](int kv, int l, int p, int h, int s, int d) {
    return static_cast<float>(((((kv * 10 + l) * 10 + p) * 10 + h) * 10 + s) * 10 + d);
  };
  for (int kv = 0; kv < 2; ++kv)
    for (int l = 0; l < g.num_layers; ++l)
      for (int p = 0; p < pages; ++p)
        for (int h = 0; h < g.num_kv_heads; ++h)
          for (int s = 0; s < g.page_size; ++s)
            for (int d = 0; d < g.head_dim; ++d) {
              float* base = kv == 0 ? cache.k_layer(l) : cache.v_layer(l);
              float& x =
                  base[p * cache.page_stride() + h * cache.head_stride() + s * g.head_dim + d];
              ASSERT_EQ(x, 0.0f);
              x = code(kv, l, p, h, s, d);
            }
  for (int kv = 0; kv < 2; ++kv)
    for (int l = 0; l < g.num_layers; ++l)
      for (int p = 0; p < pages; ++p)
        for (int h = 0; h < g.num_kv_heads; ++h) {
          const float* block = kv == 0 ? cache.k_block(l, p, h) : cache.v_block(l, p, h);
          for (int s = 0; s < g.page_size; ++s)
            for (int d = 0; d < g.head_dim; ++d)
              ASSERT_EQ(block[s * g.head_dim + d], code(kv, l, p, h, s, d));
        }
}

TEST(KvCache, BytesPerPageCountsKAndVOfEveryLayer) {
  EXPECT_EQ(KvCache::bytes_per_page(small_geometry()), 2u * 3 * 2 * 4 * 8 * sizeof(float));
  // Qwen3-8B-like: 36 layers, 8 KV heads, D 128, P 16 -> 4.5 MiB per page in f32.
  EXPECT_EQ(KvCache::bytes_per_page(KvGeometry{36, 8, 128, 16}), 4718592u);
}

TEST(KvCache, RejectsBadGeometryNamingTheField) {
  EXPECT_NE(error_of({3, 2, 8, 3}).find("page_size must be a power of two, got 3"),
            std::string::npos);
  EXPECT_NE(error_of({3, 2, 8, 0}).find("page_size must be positive"), std::string::npos);
  EXPECT_NE(error_of({0, 2, 8, 4}).find("num_layers"), std::string::npos);
  EXPECT_NE(error_of({3, -1, 8, 4}).find("num_kv_heads"), std::string::npos);
  EXPECT_NE(error_of({3, 2, 0, 4}).find("head_dim"), std::string::npos);
  EXPECT_EQ(error_of({3, 2, 8, 1}), "");  // page_size 1 is a power of two
  EXPECT_THROW(KvCache(small_geometry(), 0), Error);
}

TEST(KvCache, OutOfRangeIndexIsAnError) {
  KvCache cache(small_geometry(), 2);
  EXPECT_THROW(cache.k_layer(3), Error);
  EXPECT_THROW(cache.v_block(0, 2, 0), Error);
  EXPECT_THROW(cache.k_block(0, 0, 2), Error);
}

}  // namespace
}  // namespace vortex
