// The flows of one CUDA engine (CudaModelRunner): one CudaFlowSelector per flow, and how a
// step's decode rows, each of one flow or dense, share one decode-attention launch per layer.
//
// One flow writes every row's page list into its own buffers: its generating rows the pages it
// selects, every other row (dense requests, rows that are not generating, graph padding) a copy
// of its dense list.
//
// Several flows may differ in their dense layers, so a layer's rows are grouped by the set of
// flows that are sparse there (a layer class; most engines have one). Each class has one shared
// list buffer. Once per step, the rows that no flow of the class selects get copies of their
// dense lists (cuda::copy_dense_rows); at each layer of the class, each of its flows scores and
// writes only its own rows (every other row is kRowSkip to it). Decode attention then reads the
// class's lists in one launch, whatever flow each row belongs to. Each flow summarizes every
// filled page into its own Fields, as the CPU runner does.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "core/cuda/cuda_util.h"
#include "engine/cuda/cuda_flow_selector.h"

namespace vortex {

// The host's per-step lists that the device part reads (uploaded with the step's metadata).
struct SparseStepLists {
  std::vector<int32_t> summarize_pages;  // physical pages that become full in this step
  std::vector<int32_t> reset_pages;      // physical pages that receive their first token
  // Per decode row: its request's budget (Request::budget), else its flow's.
  std::vector<cuda::DevicePagePolicy> row_policy;
  // CudaSparseFlows::num_mode_lists() lists, each a cuda::RowMode per decode row: one per flow,
  // then one per layer class.
  std::vector<std::vector<int32_t>> row_mode;
};

class CudaSparseFlows {
 public:
  // flows[i] selects for the requests whose Request::flow is i. At most kMaxFlows.
  CudaSparseFlows(std::vector<std::shared_ptr<const SparseAttentionConfig>> flows,
                  const ModelConfig& cfg, const KvGeometry& geometry,
                  int32_t num_pages_with_scratch, const RunnerOptions& options);
  ~CudaSparseFlows();

  static constexpr size_t kMaxFlows = 32;

  size_t size() const { return flows_.size(); }
  CudaFlowSelector& flow(size_t i) { return *flows_[i]; }
  const CudaFlowSelector& flow(size_t i) const { return *flows_[i]; }
  // Row-mode lists a step uploads (SparseStepLists::row_mode).
  size_t num_mode_lists() const { return flows_.size() + classes_.size(); }
  // Whether any flow is sparse at `layer` (its decode attention reads selected lists).
  bool is_sparse_layer(int32_t layer) const { return sparse_at_[static_cast<size_t>(layer)] != 0; }
  // The flows sparse at `layer`, in index order.
  std::vector<size_t> flows_at(int32_t layer) const;

  // Host part of a step (ScheduledWork in the runner's order; decode rows are the items with one
  // query token): the lists to upload, and each flow's statistics.
  void begin_step(const std::vector<ScheduledWork>& work, SparseStepLists& lists);
  // Appends `seqs` decode rows of graph padding (they read the scratch page, dense).
  void pad_rows(int32_t seqs, SparseStepLists& lists) const;
  // The most tokens a sparse layer's decode row reads (the split count of sparse decode
  // attention is chosen for it), over every flow.
  int64_t max_selected_tokens(int64_t max_row_tokens) const;
  // Sizes the per-row buffers for `rows` decode rows; true when something was reallocated (CUDA
  // graphs holding the old addresses must be dropped).
  bool ensure_rows(int64_t rows);

  // Device parts of a step, in order. m.row_mode is the first uploaded list and
  // m.row_mode_stride the distance between lists. plan: every flow's row plans and State reset,
  // and the classes' dense copies. summarize_after_layer / summarize_after_step: the Fields of the
  // filled pages (per layer for flows that summarize there, once after the last layer for the
  // others). score(f) and select(f): flow f's part of sparse layer `layer`, written to the
  // layer's lists, which lists(layer) gives to decode attention.
  void enqueue_plan(const SparseStepMeta& m, cudaStream_t stream);
  bool summarizes_after_layer(int32_t layer) const;
  void enqueue_summarize_after_layer(int32_t layer, const cuda::DevicePagedKv& kv,
                                     const SparseStepMeta& m, cudaStream_t stream);
  bool summarizes_after_step() const;
  void enqueue_summarize_after_step(const cuda::DevicePagedKv& kv0, int64_t kv_layer_stride,
                                    const SparseStepMeta& m, cudaStream_t stream);
  void enqueue_score(size_t f, int32_t layer, const uint16_t* q, int32_t num_q_heads,
                     const SparseStepMeta& m, cudaStream_t stream);
  void enqueue_select(size_t f, int32_t layer, const SparseStepMeta& m, cudaStream_t stream);
  // Whether flow f scores and selects in one kernel for `rows` rows (then select launches
  // nothing).
  bool fuses_select(size_t f, int32_t rows) const { return flows_[f]->fuses_select(rows); }
  SelectedPageLists lists(int32_t layer) const;

  // GPU time per part of the profiled steps (all flows together).
  SparseStepProfile& profile() { return profile_; }
  const SparseStepProfile& profile() const { return profile_; }

 private:
  // Flow f's view of the step's metadata (its own row modes).
  SparseStepMeta flow_meta(size_t f, const SparseStepMeta& m) const;
  // The lists flow f writes at `layer`: its own (one flow) or the layer class's.
  const SelectedPageLists* target(int32_t layer) const;

  std::vector<std::unique_ptr<CudaFlowSelector>> flows_;
  int32_t num_kv_heads_;
  int32_t page_size_;
  int32_t max_pages_;
  std::vector<uint32_t> sparse_at_;  // per layer: bit f set when flow f is sparse there
  // Several flows: each class's set of flows (a sparse_at_ value) and its shared lists.
  std::vector<uint32_t> classes_;
  std::vector<int32_t> layer_class_;  // per layer: its class, -1 for a layer dense to all
  int64_t rows_cap_ = 0;
  DeviceBuffer offsets_;  // [rows_cap_] r * max_pages, shared by the classes' lists
  std::vector<DeviceBuffer> class_pages_, class_tokens_;
  std::vector<SelectedPageLists> class_lists_;
  SparseStepProfile profile_;
};

}  // namespace vortex
