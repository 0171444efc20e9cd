// Sparse decode by a flow, as the engine and both runners see it: the configuration of a loaded
// flow (the compiled flow, its budget policy with the user's overrides) and the statistics and
// per-part profile a sparse run reports. The runners' flow code is engine/cpu/cpu_sparse_attention
// and engine/cuda/cuda_sparse_flows: they summarise pages as they fill and, at each decode step
// and sparse layer, select each row's pages (per request, per KV head).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/json_file.h"
#include "flow/budget_planner.h"
#include "flow/ir.h"
#include "kv/kv_cache.h"
#include "model/model_config.h"

namespace vortex {

struct SparseAttentionConfig {
  std::string flow_path;
  flow::FlowProgram program;  // compiled for the model's G, D and the page size
  flow::BudgetPolicy policy;  // the flow's, with the user's overrides applied
  bool record_recall = false;
};

// Reads and compiles FLOW_PATH for the model geometry; a flow with errors throws vortex::Error
// with its first diagnostic on one line (file:line:col: error: ...), as does a path that is not
// a regular flow file (flow/source_file.h).
SparseAttentionConfig load_sparse_attention(const std::string& flow_path,
                                            const flow::BudgetOverrides& overrides,
                                            const ModelConfig& model, int32_t page_size,
                                            bool record_recall);

// The same for a flow already compiled for the model's geometry (compile_flow with its G, D, P
// and layers): its budget with the overrides applied and checked against the model's layers.
// `name` stands for its path (the engine names a flow by its file stem).
SparseAttentionConfig make_sparse_attention(const std::string& name, flow::FlowProgram program,
                                            const flow::BudgetOverrides& overrides,
                                            const ModelConfig& model, bool record_recall);

// Bytes the flow's Fields and States take per KV page, all layers and KV heads together, on any
// runner (an upper bound: f32 values plus padding). The engine counts them against the KV
// memory budget with the page's K and V.
size_t flow_bytes_per_page(const SparseAttentionConfig& config, const KvGeometry& geometry);

// Counters of one run (all decode steps). A "row" is one (request, KV head) in one layer.
struct SparseStats {
  int64_t decode_steps = 0;        // steps with at least one decode row
  int64_t decode_rows = 0;         // rows of decode queries, all layers
  int64_t dense_pages = 0;         // pages those rows would read with dense attention
  int64_t read_pages = 0;          // pages they read
  int64_t sparse_dense_pages = 0;  // the same two counts for sparse layers only
  int64_t sparse_read_pages = 0;
  int64_t sparse_rows = 0;       // rows in sparse layers
  int64_t scored_rows = 0;       // of those, rows that did not fit their budget
  int64_t summarized_pages = 0;  // (page, KV head, layer) summaries computed
  double summarize_seconds = 0;  // all steps (prefill fills most pages)
  double select_seconds = 0;     // plan + score + top-k, decode rows
  double attention_seconds = 0;  // attention of decode-only steps
  double recall_seconds = 0;     // --record-recall's extra dense pass (not counted as step time)
  // With record_recall: per layer, the attention recall of each sparse row (share of the full
  // softmax mass, averaged over the row's query heads, that falls on the selected pages).
  std::vector<std::vector<float>> recall;

  double kv_read_fraction() const;            // read / dense over all layers
  double sparse_layer_read_fraction() const;  // read / dense over sparse layers
};

// The recall figures of SparseStats::recall: {"mean", "p5", "rows", "per_layer": [{"layer",
// "mean", "p5", "rows"}]} over the rows recorded (mean and p5 null when there are none).
Json recall_summary_json(const SparseStats& stats);

// The counters and, when recorded, the recall: what GET /v1/flows/NAME reports.
Json flow_stats_json(const SparseStats& stats);

// Device time of the parts of a sparse decode step, summed over the steps that were profiled
// (a GPU runner times every few decode steps with events; see CudaModelRunner).
struct SparseStepProfile {
  int64_t steps = 0;
  double plan_s = 0;             // row plans and score worklist
  double summarize_s = 0;        // fields of the pages that filled
  double score_s = 0;            // the flow's score kernels
  double select_s = 0;           // top-k and page lists
  double attention_s = 0;        // decode attention of sparse layers
  double dense_attention_s = 0;  // decode attention of dense layers
  double step_s = 0;             // the whole step
  // Profiled steps that scored and selected in one kernel (then score_s holds both, and
  // select_s nothing).
  int64_t fused_select_steps = 0;

  double flow_s() const { return plan_s + summarize_s + score_s + select_s; }
};

}  // namespace vortex
