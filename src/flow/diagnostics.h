// Compiler diagnostics for flows: `file:line:col: error: message`, rendered with the source line
// and a caret, plus notes. A DiagnosticSink collects them and stops a compile after kMaxErrors.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "flow/ir.h"

namespace vortex::flow {

enum class Severity { kError, kNote };

struct Diagnostic {
  Severity severity = Severity::kError;
  SourceLoc loc;
  std::string message;
  std::vector<Diagnostic> notes;  // severity kNote, printed after the error
};

// Thrown by DiagnosticSink when the error limit is reached, and used by the front end to
// abandon a compile that cannot go on (e.g. the lexer failed). Never escapes compile_flow.
struct CompileAborted : std::exception {};

class DiagnosticSink {
 public:
  static constexpr int kMaxErrors = 20;

  // Records an error. The kMaxErrors-th error also records that the compile stops there and
  // throws CompileAborted.
  void error(SourceLoc loc, std::string message, std::vector<Diagnostic> notes = {});
  static Diagnostic note(SourceLoc loc, std::string message);

  bool has_errors() const { return error_count_ > 0; }
  const std::vector<Diagnostic>& diagnostics() const { return diagnostics_; }
  std::vector<Diagnostic> take() { return std::move(diagnostics_); }

 private:
  std::vector<Diagnostic> diagnostics_;
  int error_count_ = 0;
};

// `file:line:col: error: message` then the source line and a caret under the column, for each
// diagnostic and its notes. A diagnostic without a location prints `file: error: message`.
// Without `with_source`: only the first line of each diagnostic (one line per error, no notes).
std::string format_diagnostics(const std::vector<Diagnostic>& diagnostics, std::string_view source,
                               const std::string& filename, bool with_source = true);

}  // namespace vortex::flow
