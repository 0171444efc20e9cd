// Tokenizer for the Python subset flows are written in: names, keywords, numbers, strings
// (including triple-quoted docstrings), operators, and NEWLINE / INDENT / DEDENT from the
// indentation, with implicit line joining inside brackets and backslash continuation.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "flow/diagnostics.h"

namespace vortex::flow {

enum class TokenKind {
  kName,
  kKeyword,  // Python keywords, text says which
  kInt,
  kFloat,
  kString,
  kOp,  // operators and delimiters, text says which ("+", "**=", "(", "...", ...)
  kNewline,
  kIndent,
  kDedent,
  kEnd,
};

struct Token {
  TokenKind kind = TokenKind::kEnd;
  std::string text;  // names, keywords, operators; a string's decoded contents
  int64_t int_value = 0;
  double float_value = 0.0;
  SourceLoc loc;
};

const char* token_kind_name(TokenKind k);

// Tokenizes the whole source. Lexical errors go to `sink`; on any error the returned tokens are
// not meant to be parsed (callers check sink.has_errors()).
std::vector<Token> tokenize(std::string_view source, DiagnosticSink& sink);

}  // namespace vortex::flow
