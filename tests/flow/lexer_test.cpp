// Lexer: Python tokens with INDENT/DEDENT, strings, numbers, line joining, and lexical errors.
#include "flow/lexer.h"

#include <gtest/gtest.h>

namespace vortex::flow {
namespace {

std::vector<Token> lex(std::string_view src, DiagnosticSink* out = nullptr) {
  DiagnosticSink sink;
  std::vector<Token> t = tokenize(src, sink);
  if (out)
    *out = sink;
  else
    EXPECT_FALSE(sink.has_errors()) << sink.diagnostics().front().message;
  return t;
}

std::vector<TokenKind> kinds(const std::vector<Token>& ts) {
  std::vector<TokenKind> out;
  for (const Token& t : ts) out.push_back(t.kind);
  return out;
}

using K = TokenKind;

TEST(Lexer, IndentAndDedentFollowTheBlocks) {
  auto t = lex("if x:\n    y = 1\n    if z:\n        pass\nw\n");
  EXPECT_EQ(
      kinds(t),
      (std::vector<K>{K::kKeyword, K::kName,    K::kOp,      K::kNewline, K::kIndent, K::kName,
                      K::kOp,      K::kInt,     K::kNewline, K::kKeyword, K::kName,   K::kOp,
                      K::kNewline, K::kIndent,  K::kKeyword, K::kNewline, K::kDedent, K::kDedent,
                      K::kName,    K::kNewline, K::kEnd}));
}

TEST(Lexer, BlankAndCommentLinesDoNotChangeIndentation) {
  auto t = lex("a\n\n   # comment at odd indent\n\nb  # trailing\n");
  EXPECT_EQ(kinds(t), (std::vector<K>{K::kName, K::kNewline, K::kName, K::kNewline, K::kEnd}));
}

TEST(Lexer, NewlinesInsideBracketsAndAfterBackslashJoinLines) {
  auto t = lex("x = (1,\n     2)\ny = 1 + \\\n    2\n");
  EXPECT_EQ(kinds(t),
            (std::vector<K>{K::kName, K::kOp, K::kOp, K::kInt, K::kOp, K::kInt, K::kOp, K::kNewline,
                            K::kName, K::kOp, K::kInt, K::kOp, K::kInt, K::kNewline, K::kEnd}));
}

TEST(Lexer, NumbersAreIntsOrFloats) {
  auto t = lex("1 1_000 0x10 1.5 .25 1e-3 2. 3E2\n");
  EXPECT_EQ(t[0].kind, K::kInt);
  EXPECT_EQ(t[1].int_value, 1000);
  EXPECT_EQ(t[2].int_value, 16);
  EXPECT_EQ(t[3].kind, K::kFloat);
  EXPECT_DOUBLE_EQ(t[3].float_value, 1.5);
  EXPECT_DOUBLE_EQ(t[4].float_value, 0.25);
  EXPECT_DOUBLE_EQ(t[5].float_value, 1e-3);
  EXPECT_DOUBLE_EQ(t[6].float_value, 2.0);
  EXPECT_DOUBLE_EQ(t[7].float_value, 300.0);
}

TEST(Lexer, StringsIncludingTripleQuotedDocstrings) {
  auto t = lex("\"\"\"Doc\nstring \"quoted\".\"\"\"\n'a\\'b' r'\\d'\n");
  ASSERT_EQ(t[0].kind, K::kString);
  EXPECT_EQ(t[0].text, "Doc\nstring \"quoted\".");
  EXPECT_EQ(t[0].loc.line, 1);
  EXPECT_EQ(t[2].text, "a'b");
  EXPECT_EQ(t[3].text, "\\d");
  EXPECT_EQ(t[3].loc.line, 3);
}

TEST(Lexer, OperatorsTakeTheLongestMatch) {
  auto t = lex("a **= b // c ... d != e -> f\n");
  EXPECT_EQ(t[1].text, "**=");
  EXPECT_EQ(t[3].text, "//");
  EXPECT_EQ(t[5].text, "...");
  EXPECT_EQ(t[7].text, "!=");
  EXPECT_EQ(t[9].text, "->");
}

TEST(Lexer, LocationsAreOneBasedLineAndColumn) {
  auto t = lex("x = 1\n  \nfoo.bar(2)\n");
  EXPECT_EQ(t[0].loc.line, 1);
  EXPECT_EQ(t[0].loc.col, 1);
  EXPECT_EQ(t[2].loc.col, 5);
  EXPECT_EQ(t[4].text, "foo");
  EXPECT_EQ(t[4].loc.line, 3);
  EXPECT_EQ(t[6].loc.col, 5);  // bar
}

TEST(Lexer, KeywordsAreNotNames) {
  auto t = lex("def class return None lambda foo\n");
  for (int i = 0; i < 5; ++i) EXPECT_EQ(t[i].kind, K::kKeyword) << t[i].text;
  EXPECT_EQ(t[5].kind, K::kName);
}

struct LexError {
  const char* src;
  int line, col;
  const char* message;
};

class LexerErrors : public ::testing::TestWithParam<LexError> {};

TEST_P(LexerErrors, AreReportedWithLocation) {
  DiagnosticSink sink;
  lex(GetParam().src, &sink);
  ASSERT_TRUE(sink.has_errors());
  const Diagnostic& d = sink.diagnostics().front();
  EXPECT_EQ(d.loc.line, GetParam().line);
  EXPECT_EQ(d.loc.col, GetParam().col);
  EXPECT_NE(d.message.find(GetParam().message), std::string::npos) << d.message;
}

INSTANTIATE_TEST_SUITE_P(
    All, LexerErrors,
    ::testing::Values(LexError{"x = 'abc\n", 1, 5, "unterminated string literal"},
                      LexError{"x = \"\"\"abc\n", 1, 5, "unterminated triple-quoted string"},
                      LexError{"x = (1,\n 2\n", 1, 5, "'(' was never closed"},
                      LexError{"x = [1)\n", 1, 7, "closing ')' does not match '['"},
                      LexError{"x = 1)\n", 1, 6, "unmatched ')'"},
                      LexError{"x = 1 ? 2\n", 1, 7, "invalid character '?'"},
                      LexError{"if x:\n    a\n  b\n", 3, 3, "unindent does not match"},
                      LexError{"x = 3j\n", 1, 5, "complex numbers are not supported"},
                      LexError{"x = 1 \\ 2\n", 1, 7,
                               "unexpected character after line continuation"},
                      LexError{"x = \xc3\xa9\n", 1, 5, "non-ASCII character"},
                      LexError{"x = 99999999999999999999\n", 1, 5, "too large"}));

}  // namespace
}  // namespace vortex::flow
