// Recursive-descent parser for the flow subset of Python. Constructs outside the subset that
// are easy to recognise (loops, lambda, comprehensions, with, try, ...) get a diagnostic that
// says so; the parser then skips the statement and goes on, so one run reports several errors.
#pragma once

#include <string_view>

#include "flow/ast.h"
#include "flow/diagnostics.h"
#include "flow/limits.h"

namespace vortex::flow {

// Nesting deeper than kMaxNestingDepth (expressions, blocks, elif chains) and lists longer than
// kMaxListItems are diagnostics, so hostile input can exhaust neither the stack nor memory.

// Tokenizes and parses `source`. Errors go to `sink`; the module holds what parsed cleanly.
ast::Module parse_flow_source(std::string_view source, DiagnosticSink& sink);

}  // namespace vortex::flow
