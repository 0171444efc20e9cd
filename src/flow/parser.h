// Recursive-descent parser for the flow subset of Python. Constructs outside the subset that
// are easy to recognise (loops, lambda, comprehensions, with, try, ...) get a diagnostic that
// says so; the parser then skips the statement and goes on, so one run reports several errors.
#pragma once

#include <string_view>

#include "flow/ast.h"
#include "flow/diagnostics.h"

namespace vortex::flow {

// Nesting deeper than this (expressions or blocks) is a diagnostic, so hostile input cannot
// exhaust the stack.
constexpr int kMaxNestingDepth = 200;

// Tokenizes and parses `source`. Errors go to `sink`; the module holds what parsed cleanly.
ast::Module parse_flow_source(std::string_view source, DiagnosticSink& sink);

}  // namespace vortex::flow
