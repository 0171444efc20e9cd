#include "engine/sparse_attention.h"

#include <fstream>
#include <sstream>

#include "core/error.h"
#include "flow/compiler.h"

namespace vortex {

SparseAttentionConfig load_sparse_attention(const std::string& flow_path,
                                            const flow::BudgetOverrides& overrides,
                                            const ModelConfig& model, int32_t page_size,
                                            bool record_recall) {
  std::ifstream in(flow_path, std::ios::binary);
  if (!in) fail(flow_path, ": cannot open flow file");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string source = ss.str();
  flow::FlowGeometry geometry{model.group_size(), model.head_dim, page_size};
  flow::CompileOptions options;
  options.dump_ir = false;
  flow::CompileResult result = flow::compile_flow(source, flow_path, &geometry, options);
  if (!result.ok()) {
    std::string msg = flow::format_compile_errors(result, source, flow_path);
    while (!msg.empty() && msg.back() == '\n') msg.pop_back();
    fail("flow ", flow_path, " does not compile for this model (G=", geometry.G, ", D=",
         geometry.D, ", P=", geometry.P, "):\n", msg);
  }
  SparseAttentionConfig config;
  config.flow_path = flow_path;
  config.program = std::move(*result.program);
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

double SparseStats::kv_read_fraction() const {
  return dense_pages > 0 ? static_cast<double>(read_pages) / static_cast<double>(dense_pages) : 1.0;
}

double SparseStats::sparse_layer_read_fraction() const {
  return sparse_dense_pages > 0
             ? static_cast<double>(sparse_read_pages) / static_cast<double>(sparse_dense_pages)
             : 1.0;
}

}  // namespace vortex
