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

// Query tokens of one sequence handled together: each K/V page is read once for all of them
// (and for all G heads of the KV head), which is what makes prefill attention compute-bound.
constexpr int32_t kQueryBlock = 8;

struct WorkItem {
  int32_t seq;
  int32_t first;  // first query index within the sequence
  int32_t count;  // queries in the block
};

// Per-thread buffers, grown as needed.
struct Scratch {
  std::vector<float> scores;             // [rows, n_max]
  std::vector<float> acc;                // [rows, D]
  std::vector<float> inv_sum;            // [rows]
  std::vector<const float*> query;       // [rows]
  std::vector<float*> row_out;           // [rows]
  std::vector<const float*> prob;        // [rows]: the row's softmax numerators
  std::vector<float*> acc_row;           // [rows]
  std::vector<int32_t> keys;             // [rows]: keys the row attends to
  std::vector<const float*> krow, vrow;  // [n_max]: where key / value j lives
};

void prefetch_rows(const float* p, int64_t floats) {
  const auto* bytes = reinterpret_cast<const char*>(p);
  for (int64_t off = 0; off < floats * 4; off += 64) __builtin_prefetch(bytes + off);
}

// Scores of rows [r_begin, rows) against key row k, four rows at a time sharing k's loads.
void score_rows(const float* const* query, int32_t r_begin, int32_t rows, const float* k,
                int32_t D, float scale, float* scores, int64_t ld, int32_t j) {
  float dots[4];
  int32_t r = r_begin;
  for (; r + 4 <= rows; r += 4) {
    dot_many<4>(query + r, k, D, dots);
    for (int i = 0; i < 4; ++i) scores[(r + i) * ld + j] = dots[i] * scale;
  }
  switch (rows - r) {
    case 3: dot_many<3>(query + r, k, D, dots); break;
    case 2: dot_many<2>(query + r, k, D, dots); break;
    case 1: dot_many<1>(query + r, k, D, dots); break;
    default: return;
  }
  for (int32_t i = 0; i < rows - r; ++i) scores[(r + i) * ld + j] = dots[i] * scale;
}

// acc[r] = Σ_j p[r][j] · v_j over j < keys[r], ascending j, for R rows and 64 dims [c, c + 64)
// held in registers (dims at or past D read as zero and are not stored).
template <int R>
void accumulate_values(const float* const* p, const int32_t* keys, const float* const* vrow,
                       int32_t D, int32_t c, float* const* acc) {
  constexpr int kChunks = 4;
  F32x16 a[R][kChunks];
  for (int r = 0; r < R; ++r)
    for (int ch = 0; ch < kChunks; ++ch) a[r][ch] = F32x16{};
  const bool full = c + kChunks * kLanes <= D;
  const int32_t n_all = keys[R - 1];  // rows are in order of increasing key count
  for (int32_t j = 0; j < n_all; ++j) {
    F32x16 v[kChunks];
    if (full) {
      for (int ch = 0; ch < kChunks; ++ch) v[ch] = load16(vrow[j] + c + ch * kLanes);
    } else {
      for (int ch = 0; ch < kChunks; ++ch) {
        const int32_t off = c + ch * kLanes;
        v[ch] = off + kLanes <= D ? load16(vrow[j] + off)
                : off < D         ? load16_partial(vrow[j] + off, D - off)
                                  : F32x16{};
      }
    }
    for (int r = 0; r < R; ++r) {
      if (j >= keys[r]) continue;
      const F32x16 pr = F32x16{} + p[r][j];
      for (int ch = 0; ch < kChunks; ++ch) a[r][ch] = madd(a[r][ch], pr, v[ch]);
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int ch = 0; ch < kChunks; ++ch) {
      const int32_t off = c + ch * kLanes;
      if (off >= D) break;
      float buf[kLanes];
      store16(buf, a[r][ch]);
      std::memcpy(acc[r] + off, buf, static_cast<size_t>(std::min(kLanes, D - off)) * 4);
    }
  }
}

// Attention of queries first .. first+count-1 of sequence s for the G query heads that share KV
// head `kv_head`. Row r = (query i, head g) sees keys 0 .. keys[r] - 1 (causal). Two passes over
// the block's keys (scores; then softmax-weighted values); whatever the block, every row goes
// through the same operations in the same order, so its result does not depend on other rows.
void attend_block(const float* q, int32_t num_q_heads, const PagedKv& kv, const AttentionSeq& s,
                  const WorkItem& item, int32_t kv_head, float scale, float* out,
                  Scratch& scratch) {
  const int32_t D = kv.head_dim;
  const int32_t P = kv.page_size;
  const int32_t G = num_q_heads / kv.num_kv_heads;
  const int32_t rows = item.count * G;
  // A sparse row gathers the tokens of its selected pages; its query sees all of them.
  const bool sparse = s.selected != nullptr;
  int32_t sparse_keys = 0;
  if (sparse) {
    for (int32_t i = 0; i < s.num_selected[kv_head]; ++i) {
      const int32_t page = s.selected[kv_head][i];
      sparse_keys += std::min(P, s.kv_len - page * P);
    }
  }
  const int32_t first_pos = sparse ? sparse_keys - 1 : s.kv_len - s.q_len + item.first;
  const int32_t n_max = first_pos + item.count;  // keys seen by the last query of the block

  scratch.query.resize(static_cast<size_t>(rows));
  scratch.keys.resize(static_cast<size_t>(rows));
  scratch.row_out.resize(static_cast<size_t>(rows));
  for (int32_t r = 0; r < rows; ++r) {
    const int64_t t = s.q_begin + item.first + r / G;
    const int64_t head = t * num_q_heads + static_cast<int64_t>(kv_head) * G + r % G;
    scratch.query[static_cast<size_t>(r)] = q + head * D;
    scratch.row_out[static_cast<size_t>(r)] = out + head * D;
    scratch.keys[static_cast<size_t>(r)] = first_pos + r / G + 1;
  }
  scratch.krow.resize(static_cast<size_t>(n_max));
  scratch.vrow.resize(static_cast<size_t>(n_max));
  if (sparse) {
    int32_t j = 0;
    for (int32_t i = 0; i < s.num_selected[kv_head]; ++i) {
      const int32_t page = s.selected[kv_head][i];
      const int32_t n = std::min(P, s.kv_len - page * P);
      const int64_t base = s.pages[page] * kv.page_stride + kv_head * kv.head_stride;
      for (int32_t slot = 0; slot < n; ++slot, ++j) {
        scratch.krow[static_cast<size_t>(j)] = kv.k + base + slot * D;
        scratch.vrow[static_cast<size_t>(j)] = kv.v + base + slot * D;
      }
    }
  } else {
    for (int32_t j = 0; j < n_max; ++j) {
      const int64_t at = s.pages[j / P] * kv.page_stride + kv_head * kv.head_stride + (j % P) * D;
      scratch.krow[static_cast<size_t>(j)] = kv.k + at;
      scratch.vrow[static_cast<size_t>(j)] = kv.v + at;
    }
  }
  const float* const* krow = scratch.krow.data();
  const float* const* vrow = scratch.vrow.data();
  const int32_t* keys = scratch.keys.data();

  scratch.scores.resize(static_cast<size_t>(rows) * n_max);
  float* scores = scratch.scores.data();
  for (int32_t j = 0; j < n_max; ++j) {
    if (j + P < n_max) prefetch_rows(krow[j + P], D);
    // Rows are in order of increasing key count: those that see key j are a suffix.
    const int32_t r_begin = std::max(0, (j - first_pos) * G);
    score_rows(scratch.query.data(), r_begin, rows, krow[j], D, scale, scores, n_max, j);
  }

  scratch.inv_sum.resize(static_cast<size_t>(rows));
  scratch.prob.resize(static_cast<size_t>(rows));
  for (int32_t r = 0; r < rows; ++r) {
    float* sr = scores + static_cast<size_t>(r) * n_max;
    const int32_t n = keys[r];
    float max = sr[0];
    for (int32_t j = 1; j < n; ++j) max = std::max(max, sr[j]);
    exp_shifted(sr, max, n, sr);
    float sum = 0.0f;
    for (int32_t j = 0; j < n; ++j) sum += sr[j];
    scratch.inv_sum[static_cast<size_t>(r)] = 1.0f / sum;
    scratch.prob[static_cast<size_t>(r)] = sr;
  }

  scratch.acc.resize(static_cast<size_t>(rows) * D);
  scratch.acc_row.resize(static_cast<size_t>(rows));
  for (int32_t r = 0; r < rows; ++r)
    scratch.acc_row[static_cast<size_t>(r)] = scratch.acc.data() + static_cast<size_t>(r) * D;
  for (int32_t j = 0; j < std::min(n_max, P); ++j) prefetch_rows(vrow[j], D);
  for (int32_t r = 0; r < rows; r += 4) {
    const float* const* p = scratch.prob.data() + r;
    float* const* acc = scratch.acc_row.data() + r;
    for (int32_t c = 0; c < D; c += 64) {
      switch (std::min(4, rows - r)) {
        case 4: accumulate_values<4>(p, keys + r, vrow, D, c, acc); break;
        case 3: accumulate_values<3>(p, keys + r, vrow, D, c, acc); break;
        case 2: accumulate_values<2>(p, keys + r, vrow, D, c, acc); break;
        default: accumulate_values<1>(p, keys + r, vrow, D, c, acc); break;
      }
    }
  }

  for (int32_t r = 0; r < rows; ++r) {
    const float* ar = scratch.acc_row[static_cast<size_t>(r)];
    const float inv = scratch.inv_sum[static_cast<size_t>(r)];
    float* o = scratch.row_out[static_cast<size_t>(r)];
    for (int32_t d = 0; d < D; ++d) o[d] = ar[d] * inv;
  }
}

// A sparse selection must be a decode row whose page indices are ascending, in range, non-empty
// and include the last (partial) page, whose token is the query itself.
void check_selection(const AttentionSeq& s, int32_t i, const PagedKv& kv) {
  if (s.q_len != 1) fail("paged_attention: sequence ", i, " selects pages but has ", s.q_len,
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
  std::vector<WorkItem> blocks;
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
  const int32_t heads = kv.num_kv_heads;
  const int64_t items = static_cast<int64_t>(blocks.size()) * heads;
  ThreadPool::global().parallel_for(items, 1, [&](int64_t begin, int64_t end) {
    Scratch scratch;
    for (int64_t i = begin; i < end; ++i) {
      // Last blocks first: they see the most keys, and the threads' chunks even out at the end.
      const int64_t item = items - 1 - i;
      const WorkItem& block = blocks[static_cast<size_t>(item / heads)];
      attend_block(q, num_q_heads, kv, seqs[block.seq], block, static_cast<int32_t>(item % heads),
                   scale, out, scratch);
    }
  });
}

}  // namespace vortex::cpu
