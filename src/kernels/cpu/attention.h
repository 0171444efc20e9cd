// Paged KV cache writes and causal paged attention with grouped-query heads (GQA), in f32.
#pragma once

#include <cstdint>

namespace vortex::cpu {

// A paged K/V cache of one layer. Element (page, head, slot, d) of K is at
// k[page * page_stride + head * head_stride + slot * head_dim + d]; V likewise.
struct PagedKv {
  float* k;
  float* v;
  int32_t page_size, num_kv_heads, head_dim;
  int64_t page_stride, head_stride;
};

// Writes k_new and v_new [T, num_kv_heads, head_dim] of token t to slot slots[t] of page
// pages[t]. Throws vortex::Error on a negative page or a slot outside [0, page_size).
void write_kv(const PagedKv& kv, const float* k_new, const float* v_new, int64_t T,
              const int32_t* pages, const int32_t* slots);

// One sequence's slice of a batch: its queries are rows [q_begin, q_begin + q_len) of q, at
// absolute positions kv_len - q_len .. kv_len - 1; its keys 0 .. kv_len - 1 are in pages[0],
// pages[1], ... (page_size tokens each, the last page possibly partial).
struct AttentionSeq {
  int32_t q_begin, q_len, kv_len;
  const int32_t* pages;
  int32_t num_pages;
  // Sparse decode (q_len == 1 only): for KV head h, the row reads only the pages
  // selected[h][0 .. num_selected[h]) — indices into `pages`, ascending, the last page included —
  // as if the other pages did not exist. nullptr: every page (dense).
  const int32_t* const* selected = nullptr;
  const int32_t* num_selected = nullptr;
};

// out[t, h] = softmax_j(q[t, h] · k_j * scale) · v_j over keys j = 0 .. position(t) (causal),
// with q head h reading KV head h / (num_q_heads / num_kv_heads). q, out: [T_total,
// num_q_heads, head_dim]. Runs on ThreadPool::global(), in parallel over (sequence, block of up
// to 8 query tokens, KV head), each K/V page read once per block for all its query heads; a
// token's result depends on its own query and keys only, not on the batch or thread count.
// Throws vortex::Error if the heads do not divide, a sequence has q_len > kv_len, or its pages
// hold fewer than kv_len tokens.
void paged_attention(const float* q, int32_t num_q_heads, const PagedKv& kv,
                     const AttentionSeq* seqs, int32_t num_seqs, float scale, float* out);

}  // namespace vortex::cpu
