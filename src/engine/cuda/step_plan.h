// The host's plan of one CUDA step and its upload: the scheduled work flattened into the int32
// arrays the kernels read (tokens, positions, KV slots, decode rows, prefill blocks, page
// lists, sampling parameters, the flows' lists), the shape the step's kernels are sized for,
// and one pinned staging buffer copied to one device buffer per step.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <vector>

#include "core/cuda/cuda_util.h"
#include "engine/cuda/cuda_flow_selector.h"
#include "engine/cuda/cuda_sparse_flows.h"
#include "engine/model_runner.h"
#include "kernels/cuda/sampling.h"
#include "kv/kv_cache.h"
#include "model/model_config.h"

namespace vortex {

struct StepPlan {
  std::vector<int32_t> tokens, positions, kv_pages, kv_slots, sample_rows;
  std::vector<int32_t> q_rows, row_page_offset, row_num_tokens;              // decode
  std::vector<int32_t> block_seq, block_q_start;                             // prefill
  std::vector<int32_t> seq_q_begin, seq_q_len, seq_kv_len, seq_page_offset;  // prefill
  std::vector<int32_t> pages;
  std::vector<cuda::SampleParams> params;
  int32_t max_row_tokens = 0;
  SparseStepLists sparse;  // with a flow
};

// Flattens the step (sparse: the flows, which add their lists; null without flows).
StepPlan build_step_plan(const std::vector<ScheduledWork>& work,
                         const std::vector<SamplingRow>& rows, const ModelConfig& config,
                         const KvGeometry& geometry, CudaSparseFlows* sparse);

// Pads a decode-only plan to `bucket` sequences: the extra rows compute token 0 at position 0
// against `scratch_page`, and their samples are dropped.
void pad_step_plan(int32_t bucket, int32_t scratch_page, int32_t num_kv_heads,
                   const CudaSparseFlows* sparse, StepPlan& plan);

// What a step's kernels are sized for; equal shapes replay the same graph.
struct StepShape {
  int32_t T = 0, S = 0, decode_seqs = 0, prefill_blocks = 0, splits = 1;
  int32_t sparse_splits = 1, max_summarize = 0;  // with a flow
};

// Offsets (bytes) of each array in the metadata buffer, for given capacities. The page lists
// come last, so one copy of the used prefix uploads a step.
struct MetaLayout {
  size_t tokens = 0, positions = 0, kv_pages = 0, kv_slots = 0, sample_rows = 0, q_rows = 0,
         row_page_offset = 0, row_num_tokens = 0, block_seq = 0, block_q_start = 0, seq_q_begin = 0,
         seq_q_len = 0, seq_kv_len = 0, seq_page_offset = 0, params = 0, summarize_pages = 0,
         reset_pages = 0, sparse_counts = 0, row_mode = 0, row_policy = 0, pages = 0, total = 0;
  int64_t rows_cap = 0;  // elements between the row-mode lists
  MetaLayout() = default;
  // mode_lists: the flows' row-mode lists (CudaSparseFlows::num_mode_lists).
  MetaLayout(int64_t t_cap, int64_t s_cap, int64_t rows, int64_t pages_cap, int64_t mode_lists);
};

// The step's arrays in device memory (and their pinned staging copy).
class StepMetadata {
 public:
  // Places the arrays for the capacities; grows the buffers when they no longer fit (the
  // addresses change then: graphs that captured them must be dropped first).
  void lay_out(const MetaLayout& layout);
  // Copies the plan's arrays (with_flows: the flows' lists too) to the device on `stream`.
  void upload(const StepPlan& plan, bool with_flows, cudaStream_t stream);

  const MetaLayout& layout() const { return layout_; }
  template <class T>
  T* at(size_t offset) const {
    return reinterpret_cast<T*>(device_.as<char>() + offset);
  }
  // Device addresses of what the sparse kernels read.
  SparseStepMeta sparse_meta(const StepShape& shape) const;

 private:
  MetaLayout layout_;
  DeviceBuffer device_;
  PinnedBuffer host_;
};

}  // namespace vortex
