#include "flow/compiler.h"

#include <cstdlib>

#include "flow/codegen/cuda_codegen.h"
#include "flow/limits.h"
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

// The location a generator error names in its text ("file:line:col: error: detail"), for errors
// that do not carry one as a value; {0, 0} and the whole text when there is none.
Diagnostic located(const std::string& what, const std::string& filename, SourceLoc fallback) {
  Diagnostic d{Severity::kError, fallback, what, {}};
  const std::string prefix = filename + ":";
  if (what.rfind(prefix, 0) != 0) return d;
  char* end = nullptr;
  const char* p = what.c_str() + prefix.size();
  const long line = std::strtol(p, &end, 10);
  if (end == p || *end != ':') return d;
  p = end + 1;
  const long col = std::strtol(p, &end, 10);
  const std::string tag = ": error: ";
  if (end == p || std::string(end).rfind(tag, 0) != 0 || line <= 0 || col <= 0) return d;
  d.loc = SourceLoc{static_cast<int>(line), static_cast<int>(col)};
  d.message = std::string(end + tag.size());
  return d;
}

// With a fully bound geometry the flow must also be one the GPU code generator compiles: one set
// of rules for every backend, so `vortex check --model M` and `--target cuda` agree. Generation
// is pure host code (no NVRTC, no GPU).
void check_gpu_codegen(const FlowProgram& program, const FlowGeometry& geometry,
                       DiagnosticSink& sink) {
  if (geometry.G <= 0 || geometry.D <= 0 || geometry.P <= 0) return;
  const SourceLoc fallback = program.loc;
  try {
    generate_cuda_flow(program, geometry);
  } catch (const CudaCodegenError& e) {
    sink.error(e.loc().line > 0 ? e.loc() : fallback, e.detail());
  } catch (const Error& e) {
    Diagnostic d = located(e.what(), program.filename, fallback);
    sink.error(d.loc, d.message);
  }
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
  if (static_cast<int64_t>(source.size()) > kMaxSourceBytes) {
    sink.error(SourceLoc{}, "the flow source is " + std::to_string(source.size()) +
                                " bytes; flow files are limited to " +
                                std::to_string(kMaxSourceBytes) + " bytes (1 MiB)");
    return;
  }
  ast::Module module = parse_flow_source(source, sink);
  if (sink.has_errors()) return;
  std::optional<FlowProgram> program = lower_flow(module, filename, geometry, sink);
  if (!program) return;
  verify_flow(*program, sink);
  if (options.num_layers > 0) {
    for (int64_t layer : program->budget.dense_layers) {
      if (layer < options.num_layers) continue;
      sink.error(program->budget.dense_layers_loc.line > 0 ? program->budget.dense_layers_loc
                                                           : program->budget.loc,
                 "Budget dense_layers: layer " + std::to_string(layer) +
                     " does not exist: the model has " + std::to_string(options.num_layers) +
                     " layers (0.." + std::to_string(options.num_layers - 1) + ")");
      break;
    }
  }
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
  verify_constants(*program, sink);
  if (sink.has_errors()) return;
  check_gpu_codegen(*program, program->geometry, sink);
  if (sink.has_errors()) return;
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
                                  const std::string& filename, bool with_source) {
  return format_diagnostics(result.diagnostics, source, filename, with_source);
}

}  // namespace vortex::flow
