// The sparse-attention flags shared by `generate` and `bench`: --flow and the budget overrides.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>
#include <vector>

#include "core/json_file.h"
#include "engine/sparse_decode.h"

namespace vortex::cli {

struct SparseFlags {
  std::vector<std::string> flows;
  int64_t pages = 0, floor = 0, cap = 0, sink = 0, recent = 0;
  double ratio = 0;
  std::string dense_layers;
  bool record_recall = false;
  // The options, to tell which the user set.
  CLI::Option *pages_opt = nullptr, *ratio_opt = nullptr, *floor_opt = nullptr, *cap_opt = nullptr,
              *sink_opt = nullptr, *recent_opt = nullptr, *dense_opt = nullptr;
};

// Registers --flow (repeatable when `several_flows`, described by `flow_help` when given),
// the budget flags (add_budget_flags) and --record-recall.
void add_sparse_flags(CLI::App* cmd, SparseFlags& flags, bool several_flows,
                      const char* flow_help = nullptr);

// Registers only the budget overrides: --topk-pages, --topk-ratio, --topk-floor, --topk-cap,
// --sink-pages, --recent-pages and --dense-layers.
void add_budget_flags(CLI::App* cmd, SparseFlags& flags);

// The budget overrides the user gave (unset flags stay unset).
flow::BudgetOverrides budget_overrides(const SparseFlags& flags);

// Compiles `flow_path` for the model with the user's budget overrides.
std::shared_ptr<const SparseAttentionConfig> load_sparse_flags(const std::string& flow_path,
                                                               const SparseFlags& flags,
                                                               const ModelConfig& model,
                                                               int32_t page_size);

// The sparse statistics as JSON (kv_read_fraction, pages per row and step, times, recall).
Json sparse_stats_json(const SparseStats& stats);

}  // namespace vortex::cli
