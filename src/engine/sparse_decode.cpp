#include "engine/sparse_decode.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "flow/compiler.h"
#include "flow/source_file.h"

namespace vortex {

SparseAttentionConfig load_sparse_attention(const std::string& flow_path,
                                            const flow::BudgetOverrides& overrides,
                                            const ModelConfig& model, int32_t page_size,
                                            bool record_recall) {
  const std::string source = flow::read_flow_source_file(flow_path);
  flow::FlowGeometry geometry{model.group_size(), model.head_dim, page_size};
  flow::CompileOptions options;
  options.dump_ir = false;
  options.num_layers = model.num_layers;
  flow::CompileResult result = flow::compile_flow(source, flow_path, &geometry, options);
  if (!result.ok()) {
    // One line: the first diagnostic; `vortex check` shows them all with the source lines.
    const flow::Diagnostic& first = result.diagnostics.front();
    std::string where = flow_path;
    if (first.loc.line > 0) where += str_cat(":", first.loc.line, ":", first.loc.col);
    const size_t more = result.diagnostics.size() - 1;
    fail("flow ", flow_path, " does not compile for this model (G=", geometry.G, ", D=", geometry.D,
         ", P=", geometry.P, "): ", where, ": error: ", first.message,
         more ? str_cat(" (and ", more, " more; see vortex check ", flow_path, ")") : "");
  }
  return make_sparse_attention(flow_path, std::move(*result.program), overrides, model,
                               record_recall);
}

SparseAttentionConfig make_sparse_attention(const std::string& name, flow::FlowProgram program,
                                            const flow::BudgetOverrides& overrides,
                                            const ModelConfig& model, bool record_recall) {
  SparseAttentionConfig config;
  config.flow_path = name;
  config.program = std::move(program);
  config.policy = flow::apply_budget_overrides(config.program.budget, overrides);
  for (int64_t layer : config.policy.dense_layers) {
    if (layer >= model.num_layers) {
      fail_usage("dense layer ", layer, " does not exist: the model has ", model.num_layers,
                 " layers (0..", model.num_layers - 1, ")");
    }
  }
  config.record_recall = record_recall;
  return config;
}

size_t flow_bytes_per_page(const SparseAttentionConfig& config, const KvGeometry& geometry) {
  // An upper bound for both runners: the CPU keeps every value in f32; the GPU keeps a Field in
  // bf16 or int8 (plus a 4-byte scale) in a block padded to 16 bytes, a State in f32 padded to 16.
  size_t per_head = 0;
  for (const flow::FieldDecl& f : config.program.fields) {
    size_t values = 1;
    for (const flow::Dim& d : f.dims) {
      std::optional<int64_t> v = flow::eval_dim(d, config.program.geometry);
      VORTEX_ASSERT(v && *v > 0);  // compiled for this geometry
      values *= static_cast<size_t>(*v);
    }
    per_head += 4 * values + 16;
  }
  return per_head * static_cast<size_t>(geometry.num_kv_heads) *
         static_cast<size_t>(geometry.num_layers);
}

double SparseStats::kv_read_fraction() const {
  return dense_pages > 0 ? static_cast<double>(read_pages) / static_cast<double>(dense_pages) : 1.0;
}

namespace {

double percentile_of(std::vector<float> v, double p) {
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(std::floor(p * static_cast<double>(v.size() - 1)))];
}

Json summary_of(const std::vector<float>& v) {
  if (v.empty()) return {{"mean", nullptr}, {"p5", nullptr}, {"rows", 0}};
  double sum = 0;
  for (float x : v) sum += x;
  return {{"mean", sum / static_cast<double>(v.size())},
          {"p5", percentile_of(v, 0.05)},
          {"rows", v.size()}};
}

}  // namespace

Json recall_summary_json(const SparseStats& stats) {
  Json layers = Json::array();
  std::vector<float> all;
  for (size_t l = 0; l < stats.recall.size(); ++l) {
    const std::vector<float>& v = stats.recall[l];
    if (v.empty()) continue;
    Json layer = summary_of(v);
    layer["layer"] = l;
    layers.push_back(std::move(layer));
    all.insert(all.end(), v.begin(), v.end());
  }
  Json j = summary_of(all);
  j["per_layer"] = std::move(layers);
  return j;
}

Json flow_stats_json(const SparseStats& s) {
  return {{"decode_steps", s.decode_steps},
          {"decode_rows", s.decode_rows},
          {"dense_pages", s.dense_pages},
          {"read_pages", s.read_pages},
          {"kv_read_fraction", s.kv_read_fraction()},
          {"sparse_layer_read_fraction", s.sparse_layer_read_fraction()},
          {"sparse_rows", s.sparse_rows},
          {"scored_rows", s.scored_rows},
          {"summarized_pages", s.summarized_pages},
          {"recall", s.recall.empty() ? Json(nullptr) : recall_summary_json(s)}};
}

double SparseStats::sparse_layer_read_fraction() const {
  return sparse_dense_pages > 0
             ? static_cast<double>(sparse_read_pages) / static_cast<double>(sparse_dense_pages)
             : 1.0;
}

}  // namespace vortex
