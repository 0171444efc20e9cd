#include "kernels/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "kernels/cpu/cpu_kernels.h"

namespace vortex::cpu {

void write_kv(const PagedKv& kv, const float* k_new, const float* v_new, int64_t T,
              const int32_t* pages, const int32_t* slots) {
  const int64_t D = kv.head_dim;
  const size_t row_bytes = static_cast<size_t>(D) * sizeof(float);
  for (int64_t t = 0; t < T; ++t) {
    if (pages[t] < 0 || slots[t] < 0 || slots[t] >= kv.page_size)
      fail("write_kv: token ", t, " goes to page ", pages[t], " slot ", slots[t],
           ", outside a cache of pages of ", kv.page_size, " slots");
  }
  for (int64_t t = 0; t < T; ++t) {
    for (int32_t h = 0; h < kv.num_kv_heads; ++h) {
      const int64_t dst = pages[t] * kv.page_stride + h * kv.head_stride + slots[t] * D;
      const int64_t src = (t * kv.num_kv_heads + h) * D;
      std::memcpy(kv.k + dst, k_new + src, row_bytes);
      std::memcpy(kv.v + dst, v_new + src, row_bytes);
    }
  }
}

namespace {

// Query tokens of one sequence handled together: each K/V page is read once for all of them
// (and for all G heads of the KV head), which is what makes prefill attention compute-bound.
constexpr int32_t kQueryBlock = 8;

// A sparse selection must be a decode row whose page indices are ascending, in range, non-empty
// and include the last (partial) page, whose token is the query itself.
void check_selection(const AttentionSeq& s, int32_t i, const PagedKv& kv) {
  if (s.q_len != 1)
    fail("paged_attention: sequence ", i, " selects pages but has ", s.q_len,
         " queries (page selection is for decode rows)");
  const int32_t last = (s.kv_len - 1) / kv.page_size;
  for (int32_t h = 0; h < kv.num_kv_heads; ++h) {
    const int32_t n = s.num_selected[h];
    if (n < 1 || s.selected[h][n - 1] != last)
      fail("paged_attention: sequence ", i, " KV head ", h, " must select its last page ", last);
    for (int32_t k = 0; k < n; ++k) {
      if (s.selected[h][k] < 0 || (k > 0 && s.selected[h][k] <= s.selected[h][k - 1]))
        fail("paged_attention: sequence ", i, " KV head ", h,
             " selected pages must be ascending and non-negative");
    }
  }
}

}  // namespace

void paged_attention(const float* q, int32_t num_q_heads, const PagedKv& kv,
                     const AttentionSeq* seqs, int32_t num_seqs, float scale, float* out) {
  if (kv.num_kv_heads <= 0 || num_q_heads <= 0 || num_q_heads % kv.num_kv_heads != 0)
    fail("paged_attention: ", num_q_heads, " query heads cannot share ", kv.num_kv_heads,
         " KV heads evenly");
  if (kv.page_size <= 0 || kv.head_dim <= 0)
    fail("paged_attention: page_size ", kv.page_size, " and head_dim ", kv.head_dim,
         " must be positive");
  std::vector<AttentionBlock> blocks;
  for (int32_t i = 0; i < num_seqs; ++i) {
    const AttentionSeq& s = seqs[i];
    if (s.q_len < 0 || s.q_len > s.kv_len)
      fail("paged_attention: sequence ", i, " has ", s.q_len, " queries but ", s.kv_len,
           " keys (queries must be among the keys)");
    if (static_cast<int64_t>(s.num_pages) * kv.page_size < s.kv_len)
      fail("paged_attention: sequence ", i, " has ", s.kv_len, " keys but only ", s.num_pages,
           " pages of ", kv.page_size);
    if (s.selected) check_selection(s, i, kv);
    for (int32_t j = 0; j < s.q_len; j += kQueryBlock)
      blocks.push_back({i, j, std::min(kQueryBlock, s.q_len - j)});
  }
  cpu_kernels().attention(q, num_q_heads, kv, seqs, blocks.data(),
                          static_cast<int64_t>(blocks.size()), scale, out);
}

}  // namespace vortex::cpu
