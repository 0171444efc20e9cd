// The runners' tuning switches, in one place. Every one has an engine flag (cli/engine_flags.h,
// validated there) and reaches the runner through EngineOptions::runner and make_model_runner.
// The defaults choose for themselves; a set value forces one choice, to tune or to measure the
// alternatives (docs/performance.md). The CPU runner has none of these yet: they steer the CUDA
// runner, its kernels and the flows' generated kernels.
#pragma once

#include <cstdint>

namespace vortex {

struct RunnerOptions {
  // Decode steps replay CUDA graphs captured per padded batch size (--cuda-graphs).
  bool cuda_graphs = true;
  int32_t max_graph_batch = 256;  // larger decode batches run without a graph
  // > 0: decode attention is split this many ways over each row's tokens, not chosen per
  // step; dense rows (--decode-splits) and rows of sparse layers (--sparse-splits).
  int32_t decode_splits = 0;
  int32_t sparse_splits = 0;
  // The decode attention kernel (--decode-kernel): tensor-core with 3 or 4 pipeline stages, or
  // the older scalar kernel.
  enum class DecodeKernel { kMma3, kMma4, kScalar };
  DecodeKernel decode_kernel = DecodeKernel::kMma3;
  // The projections' GEMMs (--gemm): cuBLASLt, or the skinny kernel where it applies.
  enum class Gemm { kCublas, kSkinny };
  Gemm gemm = Gemm::kCublas;
  // When a flow's page Fields are computed (--flow-summarize): kAuto once after the last layer
  // where no score of the step can read the page, else after each layer's KV append; kLayer
  // always after each layer.
  enum class Summarize { kAuto, kLayer };
  Summarize summarize = Summarize::kAuto;
  // Score and select in one fused kernel or two (--flow-select); kAuto picks by rows and SMs.
  enum class ScoreSelect { kAuto, kFused, kSeparate };
  ScoreSelect score_select = ScoreSelect::kAuto;
  int32_t score_blocks_per_sm = 0;  // the per-page score grid (--flow-score-blocks); 0: 12
  // Lanes per page of the generated score kernel (--flow-score-lanes): 0 chosen for the
  // geometry, 1 one thread per page, or 2, 4, 8, 16, 32.
  int32_t flow_score_lanes = 0;
  // With flows, every this many decode graph steps is profiled per part (--profile-every);
  // 0: none.
  int32_t profile_every = 32;
  // Step N (counted from 0) is wrapped in cudaProfilerStart/Stop, the capture range of Nsight
  // Compute and Nsight Systems with --capture-range cudaProfilerApi (--profile-step); -1: none.
  int64_t profile_step = -1;
};

}  // namespace vortex
