#include "kernels/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/cpu/vec.h"

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

struct QueryRow {
  int32_t seq;
  int32_t index;  // 0 .. q_len - 1 within the sequence
};

// Attention of one query token for the G query heads that share KV head `kv_head`: two passes
// over the token's keys (scores, then softmax-weighted values), each page read once per pass
// for all G heads.
void attend_group(const float* q, int32_t num_q_heads, const PagedKv& kv, const AttentionSeq& s,
                  int32_t index, int32_t kv_head, float scale, float* out,
                  std::vector<float>& scores, std::vector<float>& acc) {
  const int32_t D = kv.head_dim;
  const int32_t P = kv.page_size;
  const int32_t G = num_q_heads / kv.num_kv_heads;
  const int64_t t = s.q_begin + index;
  const int32_t n = s.kv_len - s.q_len + index + 1;  // keys 0 .. position, inclusive
  const float* qg = q + (t * num_q_heads + static_cast<int64_t>(kv_head) * G) * D;
  scores.resize(static_cast<size_t>(G) * n);
  acc.assign(static_cast<size_t>(G) * (D + 1), 0.0f);  // G sums of p·v, then G 1/Σp

  for (int32_t j0 = 0, page = 0; j0 < n; j0 += P, ++page) {
    const float* kp = kv.k + s.pages[page] * kv.page_stride + kv_head * kv.head_stride;
    const int32_t count = std::min(P, n - j0);
    for (int32_t j = 0; j < count; ++j) {
      for (int32_t g = 0; g < G; ++g)
        scores[static_cast<size_t>(g) * n + j0 + j] = dot(qg + g * D, kp + j * D, D) * scale;
    }
  }
  float* inv_sum = acc.data() + static_cast<size_t>(G) * D;
  for (int32_t g = 0; g < G; ++g) {
    float* sg = scores.data() + static_cast<size_t>(g) * n;
    float max = sg[0];
    for (int32_t j = 1; j < n; ++j) max = std::max(max, sg[j]);
    float sum = 0.0f;
    for (int32_t j = 0; j < n; ++j) {
      sg[j] = std::exp(sg[j] - max);
      sum += sg[j];
    }
    inv_sum[g] = 1.0f / sum;
  }
  for (int32_t j0 = 0, page = 0; j0 < n; j0 += P, ++page) {
    const float* vp = kv.v + s.pages[page] * kv.page_stride + kv_head * kv.head_stride;
    const int32_t count = std::min(P, n - j0);
    for (int32_t j = 0; j < count; ++j) {
      const float* vj = vp + j * D;
      for (int32_t g = 0; g < G; ++g) {
        const float p = scores[static_cast<size_t>(g) * n + j0 + j];
        float* ag = acc.data() + static_cast<size_t>(g) * D;
        for (int32_t d = 0; d < D; ++d) ag[d] += p * vj[d];
      }
    }
  }
  for (int32_t g = 0; g < G; ++g) {
    float* og = out + (t * num_q_heads + static_cast<int64_t>(kv_head) * G + g) * D;
    const float* ag = acc.data() + static_cast<size_t>(g) * D;
    for (int32_t d = 0; d < D; ++d) og[d] = ag[d] * inv_sum[g];
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
  std::vector<QueryRow> rows;
  for (int32_t i = 0; i < num_seqs; ++i) {
    const AttentionSeq& s = seqs[i];
    if (s.q_len < 0 || s.q_len > s.kv_len)
      fail("paged_attention: sequence ", i, " has ", s.q_len, " queries but ", s.kv_len,
           " keys (queries must be among the keys)");
    if (static_cast<int64_t>(s.num_pages) * kv.page_size < s.kv_len)
      fail("paged_attention: sequence ", i, " has ", s.kv_len, " keys but only ", s.num_pages,
           " pages of ", kv.page_size);
    for (int32_t j = 0; j < s.q_len; ++j) rows.push_back({i, j});
  }
  const int32_t heads = kv.num_kv_heads;
  const int64_t items = static_cast<int64_t>(rows.size()) * heads;
  ThreadPool::global().parallel_for(items, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> scores, acc;
    for (int64_t item = begin; item < end; ++item) {
      const QueryRow& r = rows[static_cast<size_t>(item / heads)];
      attend_group(q, num_q_heads, kv, seqs[r.seq], r.index, static_cast<int32_t>(item % heads),
                   scale, out, scores, acc);
    }
  });
}

}  // namespace vortex::cpu
