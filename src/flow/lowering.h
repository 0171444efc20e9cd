// Lowering: gives the parsed module its meaning and builds the typed IR. Resolves names
// (imports from vortex.flow, module and class constants, fields, locals), evaluates constants
// and Field/State dims, inlines local variables, takes `if` on constants (checking both
// branches), and infers every op's symbolic shape. Errors in the flow's use of the language
// (unknown names, forbidden constructs, shapes that do not fit) are reported here; checks on the
// whole program (fields written and read, the score's shape) belong to the verifier.
#pragma once

#include <optional>
#include <string>

#include "flow/ast.h"
#include "flow/diagnostics.h"
#include "flow/ir.h"

namespace vortex::flow {

// The names `from vortex.flow import ...` offers, in a stable order.
const std::vector<std::string>& flow_module_names();

// With `geometry`, G, D and P are replaced by their values everywhere (only N stays symbolic);
// without it they stay symbols. Returns the program, or nullopt if any error was reported.
std::optional<FlowProgram> lower_flow(const ast::Module& module, const std::string& filename,
                                      const FlowGeometry* geometry, DiagnosticSink& sink);

}  // namespace vortex::flow
