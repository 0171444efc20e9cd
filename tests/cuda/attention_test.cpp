// Op consistency of the paged attention kernels against the CPU kernel (dense) and a
// double-precision reference (per-row page lists), on random bf16 caches and queries.
#include "kernels/cpu/attention.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "cuda/cuda_test_util.h"
#include "kernels/cuda/attention.h"

namespace vortex {
namespace {

using test::DeviceArray;

struct Cache {
  int P, Hkv, D, num_pages;
  std::vector<uint16_t> k, v;  // [page][head][slot][D]
  std::vector<float> kf, vf;
  int64_t page_stride() const { return int64_t{Hkv} * P * D; }
  int64_t head_stride() const { return int64_t{P} * D; }
  const float* key(int page, int h, int slot) const {
    return kf.data() + page * page_stride() + h * head_stride() + slot * D;
  }
  const float* value(int page, int h, int slot) const {
    return vf.data() + page * page_stride() + h * head_stride() + slot * D;
  }
};

Cache random_cache(int P, int Hkv, int D, int num_pages, Rng& rng) {
  Cache c{P, Hkv, D, num_pages, {}, {}, {}, {}};
  const size_t n = static_cast<size_t>(num_pages) * c.page_stride();
  c.k = test::random_bf16(n, rng, 1.0f, &c.kf);
  c.v = test::random_bf16(n, rng, 1.0f, &c.vf);
  return c;
}

// softmax(q · k_j * scale) · v_j over the given (page, slot) keys, in double.
std::vector<float> reference(const float* q, const Cache& c, int h,
                             const std::vector<std::pair<int, int>>& keys, float scale) {
  std::vector<double> s(keys.size());
  double mx = -INFINITY;
  for (size_t j = 0; j < keys.size(); ++j) {
    const float* k = c.key(keys[j].first, h, keys[j].second);
    double dot = 0;
    for (int d = 0; d < c.D; ++d) dot += double(q[d]) * k[d];
    s[j] = dot * scale;
    mx = std::max(mx, s[j]);
  }
  double sum = 0;
  for (double& x : s) sum += (x = std::exp(x - mx));
  std::vector<float> out(c.D);
  for (int d = 0; d < c.D; ++d) {
    double acc = 0;
    for (size_t j = 0; j < keys.size(); ++j)
      acc += s[j] * c.value(keys[j].first, h, keys[j].second)[d];
    out[d] = static_cast<float>(acc / sum);
  }
  return out;
}

cuda::DevicePagedKv device_kv(const Cache& c, const DeviceArray<uint16_t>& k,
                              const DeviceArray<uint16_t>& v) {
  cuda::DevicePagedKv kv;
  kv.k = k.get();
  kv.v = v.get();
  kv.page_size = c.P;
  kv.num_kv_heads = c.Hkv;
  kv.head_dim = c.D;
  kv.page_stride = c.page_stride();
  kv.head_stride = c.head_stride();
  return kv;
}

struct DecodeCase {
  int D, Hq, Hkv, P, splits;  // splits 0: the library's choice
  bool per_row_lists;         // each KV head reads its own subset of the sequence's pages
};

void run_decode(const DecodeCase& dc) {
  SCOPED_TRACE("D " + std::to_string(dc.D) + " Hq " + std::to_string(dc.Hq) + " Hkv " +
               std::to_string(dc.Hkv) + " P " + std::to_string(dc.P) + " splits " +
               std::to_string(dc.splits) + (dc.per_row_lists ? " per-row" : " dense"));
  Rng rng(100 + dc.D + dc.P + dc.splits);
  const std::vector<int> lens = {1, 2, 17, 64, 333, 1500};
  const int S = static_cast<int>(lens.size()), G = dc.Hq / dc.Hkv;
  int total_pages = 0;
  for (int n : lens) total_pages += (n + dc.P - 1) / dc.P;
  Cache c = random_cache(dc.P, dc.Hkv, dc.D, total_pages + 5, rng);
  // Every sequence gets distinct pages of the pool, in a shuffled order.
  std::vector<int> pool(c.num_pages);
  std::iota(pool.begin(), pool.end(), 0);
  for (int i = c.num_pages - 1; i > 0; --i) std::swap(pool[i], pool[rng.next_u64() % (i + 1)]);
  const int T = S + 3;  // the queries sit at shuffled rows among unused ones
  std::vector<int32_t> q_rows(S);
  for (int s = 0; s < S; ++s) q_rows[s] = (s * 5 + 2) % T;
  std::vector<float> qf;
  std::vector<uint16_t> q = test::random_bf16(size_t(T) * dc.Hq * dc.D, rng, 1.0f, &qf);

  std::vector<int32_t> pages, row_offset, row_tokens;
  std::vector<std::vector<std::pair<int, int>>> row_keys;
  int used = 0;
  for (int s = 0; s < S; ++s) {
    const int n_pages = (lens[s] + dc.P - 1) / dc.P;
    std::vector<int> seq_pages(pool.begin() + used, pool.begin() + used + n_pages);
    used += n_pages;
    const int last_len = lens[s] - (n_pages - 1) * dc.P;
    for (int h = 0; h < dc.Hkv; ++h) {
      std::vector<int> list = seq_pages;
      if (dc.per_row_lists && n_pages > 2) {
        // Keep the first and last page and a random half of the others, in order.
        std::vector<int> kept = {seq_pages[0]};
        for (int i = 1; i + 1 < n_pages; ++i)
          if (rng.next_u64() % 2) kept.push_back(seq_pages[i]);
        kept.push_back(seq_pages.back());
        list = kept;
      }
      row_offset.push_back(static_cast<int32_t>(pages.size()));
      row_tokens.push_back(static_cast<int32_t>((list.size() - 1) * dc.P + last_len));
      std::vector<std::pair<int, int>> keys;
      for (size_t i = 0; i < list.size(); ++i) {
        const int valid = i + 1 == list.size() ? last_len : dc.P;
        for (int slot = 0; slot < valid; ++slot) keys.push_back({list[i], slot});
      }
      row_keys.push_back(keys);
      pages.insert(pages.end(), list.begin(), list.end());
    }
  }
  int64_t max_tokens = *std::max_element(row_tokens.begin(), row_tokens.end());
  const int splits = dc.splits > 0
                         ? dc.splits
                         : cuda::decode_attention_num_splits(S * dc.Hkv, max_tokens, dc.D, G);
  DeviceArray<uint16_t> d_k(c.k), d_v(c.v), d_q(q), d_out(size_t(T) * dc.Hq * dc.D);
  DeviceArray<int32_t> d_rows(q_rows), d_off(row_offset), d_tok(row_tokens), d_pages(pages);
  DeviceArray<float> d_ws(cuda::decode_attention_workspace_bytes(S, dc.Hq, dc.D, splits) / 4);
  cuda::DecodeAttentionArgs a;
  a.q = d_q.get();
  a.out = d_out.get();
  a.q_rows = d_rows.get();
  a.row_page_offset = d_off.get();
  a.row_num_tokens = d_tok.get();
  a.pages = d_pages.get();
  a.num_seqs = S;
  a.num_q_heads = dc.Hq;
  a.num_splits = splits;
  a.scale = 1.0f / std::sqrt(float(dc.D));
  a.workspace = d_ws.get();
  ASSERT_EQ(cuda::decode_attention(a, device_kv(c, d_k, d_v), nullptr), cudaSuccess);
  const std::vector<float> out = test::to_f32(d_out.download());

  // Dense: the CPU kernel on the same (bf16-valued) cache.
  std::vector<float> cpu_out;
  if (!dc.per_row_lists) {
    std::vector<float> q_seq(size_t(S) * dc.Hq * dc.D);
    for (int s = 0; s < S; ++s)
      std::copy_n(qf.data() + size_t(q_rows[s]) * dc.Hq * dc.D, dc.Hq * dc.D,
                  q_seq.data() + size_t(s) * dc.Hq * dc.D);
    std::vector<cpu::AttentionSeq> seqs;
    for (int s = 0; s < S; ++s) {
      const int n_pages = (lens[s] + dc.P - 1) / dc.P;
      seqs.push_back({s, 1, lens[s], pages.data() + row_offset[s * dc.Hkv], n_pages});
    }
    cpu::PagedKv kv{c.kf.data(), c.vf.data(), c.P, c.Hkv, c.D, c.page_stride(), c.head_stride()};
    cpu_out.resize(q_seq.size());
    cpu::paged_attention(q_seq.data(), dc.Hq, kv, seqs.data(), S, a.scale, cpu_out.data());
  }
  for (int s = 0; s < S; ++s) {
    for (int h = 0; h < dc.Hq; ++h) {
      const size_t at = (size_t(q_rows[s]) * dc.Hq + h) * dc.D;
      std::vector<float> got(out.begin() + at, out.begin() + at + dc.D);
      std::vector<float> ref =
          reference(qf.data() + at, c, h / G, row_keys[s * dc.Hkv + h / G], a.scale);
      EXPECT_LT(test::rel_error(got, ref), 1e-2) << "seq " << s << " head " << h;
      if (!cpu_out.empty()) {
        std::vector<float> cref(cpu_out.begin() + (size_t(s) * dc.Hq + h) * dc.D,
                                cpu_out.begin() + (size_t(s) * dc.Hq + h + 1) * dc.D);
        EXPECT_LT(test::rel_error(got, cref), 1e-2) << "seq " << s << " head " << h;
      }
    }
  }
}

TEST(CudaDecodeAttention, Qwen3GeometryDenseEqualsCpuKernel) {
  VORTEX_REQUIRE_GPU();
  run_decode({128, 16, 8, 16, 0, false});
  run_decode({128, 16, 8, 16, 1, false});
  run_decode({128, 16, 8, 16, 7, false});
}

TEST(CudaDecodeAttention, SmallHeadsPagesAndWideGroupsEqualCpuKernel) {
  VORTEX_REQUIRE_GPU();
  run_decode({8, 8, 2, 4, 0, false});
  run_decode({32, 4, 2, 4, 3, false});
  run_decode({64, 32, 4, 32, 0, false});
  run_decode({128, 8, 8, 64, 2, false});
  run_decode({128, 32, 2, 16, 0, false});  // G = 16: a full fragment of query heads
}

TEST(CudaDecodeAttention, PerRowPageListsReadOnlyTheirPages) {
  VORTEX_REQUIRE_GPU();
  run_decode({128, 16, 8, 16, 0, true});
  run_decode({32, 8, 2, 4, 5, true});
}

struct PrefillCase {
  int D, Hq, Hkv, P;
};

void run_prefill(const PrefillCase& pc) {
  SCOPED_TRACE("D " + std::to_string(pc.D) + " Hq " + std::to_string(pc.Hq) + " Hkv " +
               std::to_string(pc.Hkv) + " P " + std::to_string(pc.P));
  Rng rng(200 + pc.D + pc.P);
  // (new tokens, total tokens): a plain prompt, a chunk after a cached prefix, a single token.
  const std::vector<std::pair<int, int>> seqs_spec = {
      {70, 70}, {33, 100}, {1, 9}, {130, 300}, {5, 5}};
  const int S = static_cast<int>(seqs_spec.size()), G = pc.Hq / pc.Hkv;
  int total_pages = 0, T = 0;
  for (auto [q_len, kv_len] : seqs_spec) {
    total_pages += (kv_len + pc.P - 1) / pc.P;
    T += q_len;
  }
  Cache c = random_cache(pc.P, pc.Hkv, pc.D, total_pages + 3, rng);
  std::vector<int> pool(c.num_pages);
  std::iota(pool.begin(), pool.end(), 0);
  for (int i = c.num_pages - 1; i > 0; --i) std::swap(pool[i], pool[rng.next_u64() % (i + 1)]);
  std::vector<float> qf;
  std::vector<uint16_t> q = test::random_bf16(size_t(T) * pc.Hq * pc.D, rng, 1.0f, &qf);
  std::vector<int32_t> pages, q_begin, q_len, kv_len, page_off, block_seq, block_start;
  std::vector<cpu::AttentionSeq> cpu_seqs;
  const int tpb = cuda::prefill_attention_block_tokens(G);
  int used = 0, row = 0;
  for (int s = 0; s < S; ++s) {
    const auto [ql, kl] = seqs_spec[s];
    const int n_pages = (kl + pc.P - 1) / pc.P;
    page_off.push_back(static_cast<int32_t>(pages.size()));
    pages.insert(pages.end(), pool.begin() + used, pool.begin() + used + n_pages);
    used += n_pages;
    q_begin.push_back(row);
    q_len.push_back(ql);
    kv_len.push_back(kl);
    for (int qs = 0; qs < ql; qs += tpb) {
      block_seq.push_back(s);
      block_start.push_back(qs);
    }
    row += ql;
  }
  for (int s = 0; s < S; ++s)
    cpu_seqs.push_back({q_begin[s], q_len[s], kv_len[s], pages.data() + page_off[s],
                        (kv_len[s] + pc.P - 1) / pc.P});
  DeviceArray<uint16_t> d_k(c.k), d_v(c.v), d_q(q), d_out(size_t(T) * pc.Hq * pc.D);
  DeviceArray<int32_t> d_pages(pages), d_qb(q_begin), d_ql(q_len), d_kl(kv_len), d_po(page_off),
      d_bs(block_seq), d_bq(block_start);
  cuda::PrefillAttentionArgs a;
  a.q = d_q.get();
  a.out = d_out.get();
  a.block_seq = d_bs.get();
  a.block_q_start = d_bq.get();
  a.seq_q_begin = d_qb.get();
  a.seq_q_len = d_ql.get();
  a.seq_kv_len = d_kl.get();
  a.seq_page_offset = d_po.get();
  a.pages = d_pages.get();
  a.num_blocks = static_cast<int32_t>(block_seq.size());
  a.num_q_heads = pc.Hq;
  a.scale = 1.0f / std::sqrt(float(pc.D));
  ASSERT_EQ(cuda::prefill_attention(a, device_kv(c, d_k, d_v), nullptr), cudaSuccess);
  const std::vector<float> out = test::to_f32(d_out.download());
  std::vector<float> ref(out.size());
  cpu::PagedKv kv{c.kf.data(), c.vf.data(), c.P, c.Hkv, c.D, c.page_stride(), c.head_stride()};
  cpu::paged_attention(qf.data(), pc.Hq, kv, cpu_seqs.data(), S, a.scale, ref.data());
  for (int s = 0; s < S; ++s) {
    const size_t b = size_t(q_begin[s]) * pc.Hq * pc.D, e = b + size_t(q_len[s]) * pc.Hq * pc.D;
    EXPECT_LT(test::rel_error(std::vector<float>(out.begin() + b, out.begin() + e),
                              std::vector<float>(ref.begin() + b, ref.begin() + e)),
              1e-2)
        << "sequence " << s;
  }
}

TEST(CudaPrefillAttention, Qwen3GeometryWithPrefixEqualsCpuKernel) {
  VORTEX_REQUIRE_GPU();
  run_prefill({128, 16, 8, 16});
  run_prefill({128, 32, 8, 16});
}

TEST(CudaPrefillAttention, SmallHeadsOddGroupsAndPagesEqualCpuKernel) {
  VORTEX_REQUIRE_GPU();
  run_prefill({8, 8, 2, 4});
  run_prefill({32, 4, 2, 4});
  run_prefill({64, 14, 2, 32});  // G = 7: blocks of 9 tokens, a partial row group
  run_prefill({128, 8, 8, 64});
}

}  // namespace
}  // namespace vortex
