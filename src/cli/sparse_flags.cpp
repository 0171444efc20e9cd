#include "cli/sparse_flags.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace vortex::cli {

void add_sparse_flags(CLI::App* cmd, SparseFlags& f, bool several_flows, const char* flow_help) {
  if (several_flows) {
    cmd->add_option("--flow", f.flows,
                    flow_help ? flow_help : "Sparse-attention flow file (repeatable)");
  } else {
    cmd->add_option("--flow", f.flows, "Sparse-attention flow file (flows/*.py)")->expected(1);
  }
  add_budget_flags(cmd, f);
  cmd->add_flag("--record-recall", f.record_recall,
                "Also measure attention recall (softmax mass on the selected pages)");
}

void add_budget_flags(CLI::App* cmd, SparseFlags& f) {
  f.pages_opt = cmd->add_option("--topk-pages", f.pages, "Pages each row reads (budget B)");
  f.ratio_opt = cmd->add_option("--topk-ratio", f.ratio, "Budget as a fraction of the row's pages");
  f.floor_opt = cmd->add_option("--topk-floor", f.floor, "Smallest budget in pages");
  f.cap_opt = cmd->add_option("--topk-cap", f.cap, "Largest budget in pages");
  f.sink_opt = cmd->add_option("--sink-pages", f.sink, "First pages always read");
  f.recent_opt = cmd->add_option("--recent-pages", f.recent, "Last pages always read");
  f.dense_opt = cmd->add_option("--dense-layers", f.dense_layers,
                                "Layers that stay dense: a list like 0,1 or 'none'");
}

namespace {

std::vector<int64_t> parse_layers(const std::string& text) {
  std::vector<int64_t> out;
  if (text == "none") return out;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    std::string item =
        text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    size_t used = 0;
    long long v = -1;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (item.empty() || used != item.size() || v < 0) {
      fail_usage("--dense-layers: '", item, "' is not a layer index (use e.g. 0,1 or none)");
    }
    out.push_back(v);
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return out;
}

}  // namespace

flow::BudgetOverrides budget_overrides(const SparseFlags& f) {
  flow::BudgetOverrides o;
  if (f.pages_opt->count()) o.pages = f.pages;
  if (f.ratio_opt->count()) o.ratio = f.ratio;
  if (f.floor_opt->count()) o.floor = f.floor;
  if (f.cap_opt->count()) o.cap = f.cap;
  if (f.sink_opt->count()) o.sink = f.sink;
  if (f.recent_opt->count()) o.recent = f.recent;
  if (f.dense_opt->count()) o.dense_layers = parse_layers(f.dense_layers);
  return o;
}

std::shared_ptr<const SparseAttentionConfig> load_sparse_flags(const std::string& flow_path,
                                                               const SparseFlags& f,
                                                               const ModelConfig& model,
                                                               int32_t page_size) {
  return std::make_shared<const SparseAttentionConfig>(
      load_sparse_attention(flow_path, budget_overrides(f), model, page_size, f.record_recall));
}

Json sparse_stats_json(const SparseStats& s) {
  Json j = {
      {"kv_read_fraction", s.kv_read_fraction()},
      {"kv_read_fraction_sparse_layers", s.sparse_layer_read_fraction()},
      {"pages_selected_per_row",
       s.sparse_rows ? static_cast<double>(s.sparse_read_pages) / s.sparse_rows : 0.0},
      {"pages_read_per_step",
       s.decode_steps ? static_cast<double>(s.read_pages) / s.decode_steps : 0.0},
      {"scored_row_fraction",
       s.sparse_rows ? static_cast<double>(s.scored_rows) / s.sparse_rows : 0.0},
      {"summarized_pages", s.summarized_pages},
      {"time_summarize_s", s.summarize_seconds},
      {"time_score_select_s", s.select_seconds},
      {"time_decode_attention_s", s.attention_seconds},
      {"time_recall_s", s.recall_seconds},
  };
  if (!s.recall.empty()) {
    const Json recall = recall_summary_json(s);
    j["recall_by_layer"] = recall["per_layer"];
    j["recall_mean"] = recall["mean"].is_null() ? Json(1.0) : recall["mean"];
  }
  return j;
}

}  // namespace vortex::cli
