#include "flow/compiler.h"

#include "flow/lowering.h"
#include "flow/parser.h"
#include "flow/passes.h"
#include "flow/verifier.h"

namespace vortex::flow {
namespace {

std::string check_geometry(const FlowGeometry& g) {
  if (g.G < 0 || g.D < 0 || g.P < 0 || g.G > (1 << 20) || g.D > (1 << 20) || g.P > (1 << 20))
    return "geometry values must be positive (0 = symbolic) and below 2^20 (got G=" +
           std::to_string(g.G) + ", D=" + std::to_string(g.D) + ", P=" + std::to_string(g.P) + ")";
  if (g.P > 0 && (g.P & (g.P - 1)) != 0)
    return "page size P must be a power of two, got " + std::to_string(g.P);
  return {};
}

void run_pipeline(std::string_view source, const std::string& filename,
                  const FlowGeometry* geometry, const CompileOptions& options, DiagnosticSink& sink,
                  CompileResult& result) {
  if (geometry) {
    std::string bad = check_geometry(*geometry);
    if (!bad.empty()) {
      sink.error(SourceLoc{}, bad);
      return;
    }
  }
  ast::Module module = parse_flow_source(source, sink);
  if (sink.has_errors()) return;
  std::optional<FlowProgram> program = lower_flow(module, filename, geometry, sink);
  if (!program) return;
  verify_flow(*program, sink);
  if (sink.has_errors()) return;

  struct PassEntry {
    const char* name;
    void (*run)(FlowProgram&);
  };
  static constexpr PassEntry kPasses[] = {
      {"constant folding", fold_constants},
      {"dead-code removal", remove_dead_code},
      {"placement", assign_placement},
  };
  auto dump = [&](const char* after) {
    if (options.dump_ir)
      result.ir_dumps.push_back(std::string("=== after ") + after + " ===\n" +
                                print_program(*program));
  };
  auto check = [&](const char* after) {
    std::string broken = check_ir_invariants(*program);
    if (broken.empty()) return true;
    sink.error(SourceLoc{}, std::string("internal compiler error after ") + after + ": " + broken +
                                " (please report this flow)");
    return false;
  };
  if (!check("lowering")) return;
  dump("lowering");
  for (const PassEntry& pass : kPasses) {
    pass.run(*program);
    if (!check(pass.name)) return;
    dump(pass.name);
  }
  result.program = std::move(program);
}

}  // namespace

CompileResult compile_flow(std::string_view source, const std::string& filename,
                           const FlowGeometry* geometry, const CompileOptions& options) {
  CompileResult result;
  DiagnosticSink sink;
  try {
    run_pipeline(source, filename, geometry, options, sink, result);
  } catch (const CompileAborted&) {
    // The error limit was reached or a stage could not go on; the diagnostics say why.
  }
  if (sink.has_errors()) result.program.reset();
  result.diagnostics = sink.take();
  return result;
}

std::string format_compile_errors(const CompileResult& result, std::string_view source,
                                  const std::string& filename) {
  return format_diagnostics(result.diagnostics, source, filename);
}

}  // namespace vortex::flow
