#include "flow/lowering.h"

#include "flow/lowering/lowerer.h"  // the Lowering class, split by part of the language

namespace vortex::flow {

const std::vector<std::string>& flow_module_names() {
  static const std::vector<std::string> names = {
      "Flow",        "Field",   "State", "Budget", "D",          "G",        "P",      "N",
      "maximum",     "minimum", "abs",   "exp",    "log",        "sqrt",     "relu",   "sigmoid",
      "silu",        "where",   "sum",   "mean",   "max",        "min",      "l2norm", "softmax",
      "expand_dims", "zeros",   "ones",  "full",   "page_index", "num_pages"};
  return names;
}

std::optional<FlowProgram> lower_flow(const ast::Module& module, const std::string& filename,
                                      const FlowGeometry* geometry, DiagnosticSink& sink) {
  return lowering::Lowering(filename, geometry, sink).run(module);
}

}  // namespace vortex::flow
