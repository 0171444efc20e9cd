// The CPU runner's sparse-attention state of one flow: the flow executor, the page summaries
// (stored per physical page, so they live and die with the page; every page that fills is
// summarized, whichever flow its request runs, so a page shared through the prefix cache has
// this flow's Fields for every request that reads it), the per-request flow State, and the
// selection of the pages of each decode row of this flow's requests, per KV head.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "engine/scheduler.h"
#include "engine/sparse_decode.h"
#include "flow/cpu_executor.h"
#include "kernels/cpu/attention.h"
#include "kv/kv_cache.h"

namespace vortex {

class CpuSparseAttention {
 public:
  // flow_index: the Request::flow of the requests whose decode rows this object selects.
  CpuSparseAttention(std::shared_ptr<const SparseAttentionConfig> config, int32_t flow_index,
                     const KvGeometry& kv, int32_t num_pages, int32_t num_q_heads);

  // Looks at the step's work: which items are this flow's decode rows (one query of a request
  // that is generating and runs this flow) and which pages became full.
  void begin_step(const std::vector<ScheduledWork>& work);
  bool is_sparse_layer(int32_t layer) const;
  // The step computes this flow's decode rows only (no prefill chunk, no other flow's row): its
  // attention time is this flow's decode time.
  bool pure_decode_step() const { return pure_decode_; }
  // Runs summarize for the pages that became full in this step (after their K/V were written).
  void summarize(int32_t layer, KvCache& cache);
  // Runs summarize for every page of the cache in every sparse layer (a flow added while
  // serving: the pages already filled need its Fields).
  void summarize_every_page(KvCache& cache);
  // For a sparse layer, selects the pages of every decode row of this flow per KV head (by the
  // request's own budget when it has one) and points seqs[i] at them; for a dense layer, only
  // counts the pages read. q: [T, Hq, D] after RoPE.
  void select(int32_t layer, const float* q, std::vector<cpu::AttentionSeq>& seqs);
  // With record_recall: the share of the full softmax mass on the selected pages, per row.
  void record_recall(int32_t layer, const float* q, const cpu::PagedKv& kv,
                     const std::vector<cpu::AttentionSeq>& seqs, float scale);
  void release(int64_t request_id) { states_.erase(request_id); }

  SparseStats& stats() { return stats_; }
  const SparseStats& stats() const { return stats_; }

 private:
  struct DecodeRow {
    size_t seq;  // index into the step's sequences
    int64_t request_id;
    int32_t num_pages;  // n, the partial last page included
    const std::vector<int32_t>* pages;
    const flow::BudgetPolicy* budget;  // the request's, or null: the flow's
  };

  std::shared_ptr<const SparseAttentionConfig> config_;
  int32_t flow_index_;
  KvGeometry kv_;
  int32_t num_q_heads_;
  flow::CpuFlowExecutor executor_;
  flow::FieldStore fields_;
  std::map<int64_t, std::vector<flow::RowState>> states_;  // per request: [layer][kv head]
  SparseStats stats_;

  // This step.
  std::vector<DecodeRow> decode_rows_;
  std::vector<int32_t> full_pages_;
  bool pure_decode_ = false;
  // Per decode row and KV head: the selection and the pointers the attention kernel reads.
  std::vector<std::vector<int32_t>> selected_;
  std::vector<const int32_t*> selected_ptr_;
  std::vector<int32_t> selected_count_;
  std::vector<const float*> page_fields_;
};

}  // namespace vortex
