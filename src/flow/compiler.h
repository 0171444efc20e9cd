// The flow compiler's entry point: source text in, verified and optimised IR (or diagnostics)
// out. Pipeline: lex + parse -> lower (names, constants, shapes) -> verify -> constant folding
// -> dead-code removal -> placement (PER_PAGE / CROSS_PAGE stages).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "flow/diagnostics.h"
#include "flow/ir.h"

namespace vortex::flow {

struct CompileResult {
  std::optional<FlowProgram> program;   // set iff there are no errors
  std::vector<Diagnostic> diagnostics;  // at most DiagnosticSink::kMaxErrors errors
  // With CompileOptions::dump_ir: "=== after <pass> ===\n" + the program, after each pass.
  std::vector<std::string> ir_dumps;

  bool ok() const { return program.has_value(); }
};

struct CompileOptions {
  bool dump_ir = true;
  // The model's layer count, when a model is known (0: unknown): every layer of the flow's
  // Budget dense_layers must exist.
  int64_t num_layers = 0;
};

// Compiles one flow file. With `geometry` the program is specialised to its nonzero values
// (P must be a power of two) and those size checks are concrete; with nullptr (or zeros) the
// symbols stay symbolic. With G, D and P all bound the flow must also be one the CUDA code
// generator compiles (generation only: no NVRTC or GPU needed), so one set of rules decides for
// every backend. Never throws for bad input: every problem is a diagnostic (the limits of
// flow/limits.h included).
CompileResult compile_flow(std::string_view source, const std::string& filename,
                           const FlowGeometry* geometry, const CompileOptions& options = {});

// The diagnostics of a compile, rendered like a C compiler's (see format_diagnostics).
std::string format_compile_errors(const CompileResult& result, std::string_view source,
                                  const std::string& filename, bool with_source = true);

}  // namespace vortex::flow
