// Parser: the AST of the flow subset with locations, and syntax errors with recovery.
#include "flow/parser.h"

#include <gtest/gtest.h>

namespace vortex::flow {
namespace {

using ast::ExprKind;
using ast::StmtKind;

ast::Module parse(std::string_view src) {
  DiagnosticSink sink;
  ast::Module m = parse_flow_source(src, sink);
  EXPECT_FALSE(sink.has_errors()) << sink.diagnostics().front().message;
  return m;
}

std::vector<Diagnostic> errors(std::string_view src) {
  DiagnosticSink sink;
  try {
    parse_flow_source(src, sink);
  } catch (const CompileAborted&) {
  }
  return sink.take();
}

TEST(Parser, ModuleWithImportClassAndMethods) {
  ast::Module m = parse(
      "\"\"\"Doc.\"\"\"\n"
      "from vortex.flow import Flow, Field as F, D\n"
      "class Q(Flow):\n"
      "    c = F(1, D)\n"
      "    def score(self, q):\n"
      "        return q.sum(axis=-1)\n");
  ASSERT_EQ(m.body.size(), 3u);
  EXPECT_EQ(m.body[0]->kind, StmtKind::kExpr);
  const ast::Stmt& imp = *m.body[1];
  EXPECT_EQ(imp.kind, StmtKind::kImportFrom);
  EXPECT_EQ(imp.text, "vortex.flow");
  ASSERT_EQ(imp.aliases.size(), 3u);
  EXPECT_EQ(imp.aliases[1].name, "Field");
  EXPECT_EQ(imp.aliases[1].as, "F");
  const ast::Stmt& cls = *m.body[2];
  EXPECT_EQ(cls.kind, StmtKind::kClass);
  EXPECT_EQ(cls.text, "Q");
  ASSERT_EQ(cls.body.size(), 2u);
  const ast::Stmt& def = *cls.body[1];
  EXPECT_EQ(def.kind, StmtKind::kDef);
  ASSERT_EQ(def.params.size(), 2u);
  EXPECT_EQ(def.params[1].name, "q");
  const ast::Expr& ret = *def.body[0]->value;
  EXPECT_EQ(ret.kind, ExprKind::kCall);
  ASSERT_EQ(ret.keywords.size(), 1u);
  EXPECT_EQ(ret.keywords[0].name, "axis");
  EXPECT_EQ(ret.keywords[0].value->kind, ExprKind::kUnary);
  EXPECT_EQ(ret.lhs->kind, ExprKind::kAttribute);
  EXPECT_EQ(ret.lhs->text, "sum");
  EXPECT_EQ(ret.lhs->loc.line, 6);
  EXPECT_EQ(ret.lhs->loc.col, 18);
}

TEST(Parser, PrecedenceFollowsPython) {
  ast::Module m = parse("x = -a ** 2 + b * c @ d < e\n");
  const ast::Expr& e = *m.body[0]->value;
  ASSERT_EQ(e.kind, ExprKind::kCompare);
  const ast::Expr& sum = *e.lhs;
  ASSERT_EQ(sum.text, "+");
  EXPECT_EQ(sum.lhs->kind, ExprKind::kUnary);  // -(a ** 2)
  EXPECT_EQ(sum.lhs->lhs->text, "**");
  EXPECT_EQ(sum.rhs->text, "@");  // (b * c) @ d
  EXPECT_EQ(sum.rhs->lhs->text, "*");
}

TEST(Parser, SubscriptsWithSlicesNoneAndEllipsis) {
  ast::Module m = parse("y = x[:, None, 1:-1:2, ...]\n");
  const ast::Expr& s = *m.body[0]->value;
  ASSERT_EQ(s.kind, ExprKind::kSubscript);
  ASSERT_EQ(s.items.size(), 4u);
  EXPECT_EQ(s.items[0]->kind, ExprKind::kSlice);
  EXPECT_FALSE(s.items[0]->items[0]);
  EXPECT_EQ(s.items[1]->kind, ExprKind::kNone);
  EXPECT_EQ(s.items[2]->items[1]->kind, ExprKind::kUnary);
  EXPECT_EQ(s.items[2]->items[2]->int_value, 2);
  EXPECT_EQ(s.items[3]->kind, ExprKind::kEllipsis);
}

TEST(Parser, IfElifElseAndAugmentedAssignment) {
  ast::Module m = parse("if A:\n    x += 1\nelif B:\n    pass\nelse:\n    x = (1, 2)\n");
  const ast::Stmt& s = *m.body[0];
  EXPECT_EQ(s.body[0]->kind, StmtKind::kAugAssign);
  EXPECT_EQ(s.body[0]->text, "+");
  ASSERT_EQ(s.orelse.size(), 1u);
  EXPECT_EQ(s.orelse[0]->kind, StmtKind::kIf);
  EXPECT_EQ(s.orelse[0]->orelse[0]->value->kind, ExprKind::kTuple);
}

TEST(Parser, ReportsSeveralSyntaxErrorsAndRecovers) {
  auto d = errors("x = = 1\ny = 2\nz = (1 +)\nfor i in y:\n    pass\nw = lambda: 1\n");
  ASSERT_EQ(d.size(), 4u);
  EXPECT_EQ(d[0].loc.line, 1);
  EXPECT_NE(d[0].message.find("expected an expression, found '='"), std::string::npos);
  EXPECT_EQ(d[1].loc.line, 3);
  EXPECT_EQ(d[2].loc.line, 4);
  EXPECT_NE(d[2].message.find("loops are not allowed"), std::string::npos);
  EXPECT_EQ(d[3].loc.line, 6);
  EXPECT_NE(d[3].message.find("lambda"), std::string::npos);
}

struct SyntaxCase {
  const char* src;
  const char* message;
};

class ParserRejects : public ::testing::TestWithParam<SyntaxCase> {};

TEST_P(ParserRejects, WithAMessageThatNamesTheConstruct) {
  auto d = errors(GetParam().src);
  ASSERT_FALSE(d.empty()) << GetParam().src;
  EXPECT_NE(d[0].message.find(GetParam().message), std::string::npos) << d[0].message;
}

INSTANTIATE_TEST_SUITE_P(
    All, ParserRejects,
    ::testing::Values(SyntaxCase{"x = a if b else c\n", "use where(c, a, b)"},
                      SyntaxCase{"x = [i for i in y]\n", "comprehensions"},
                      SyntaxCase{"x = {1: 2}\n", "dicts and sets"},
                      SyntaxCase{"with a:\n    pass\n", "'with' statements"},
                      SyntaxCase{"try:\n    pass\nexcept:\n    pass\n", "'try' statements"},
                      SyntaxCase{"@dec\ndef f():\n    pass\n", "decorators"},
                      SyntaxCase{"x = a < b < c\n", "chained comparisons"},
                      SyntaxCase{"x = a in b\n", "'in' comparisons"},
                      SyntaxCase{"a = b = 1\n", "chained assignment"},
                      SyntaxCase{"x: int = 1\n", "annotations"},
                      SyntaxCase{"def f(*a):\n    pass\n", "plain names"},
                      SyntaxCase{"f(*a)\n", "*args"},
                      SyntaxCase{"f(a=1, 2)\n", "positional argument cannot follow"},
                      SyntaxCase{"while 1:\n    break\n", "loops are not allowed"},
                      SyntaxCase{"  x = 1\n", "unexpected indent"},
                      SyntaxCase{"if x:\npass\n", "expected an indented block"},
                      SyntaxCase{"global x\n", "'global' statements"},
                      SyntaxCase{"x = (yield)\n", "'yield' is not allowed"},
                      SyntaxCase{"from . import x\n", "relative imports"},
                      SyntaxCase{"x = y[]\n", "empty subscript"}));

TEST(Parser, DeepNestingIsADiagnosticNotACrash) {
  std::string deep = "x = " + std::string(500, '(') + "1" + std::string(500, ')') + "\n";
  auto d = errors(deep);
  ASSERT_FALSE(d.empty());
  EXPECT_NE(d.back().message.find("nest"), std::string::npos) << d.back().message;
  std::string chain = "x = 1";
  for (int i = 0; i < 5000; ++i) chain += " + 1";
  d = errors(chain + "\n");
  ASSERT_FALSE(d.empty());
  EXPECT_NE(d.back().message.find("nested too deeply"), std::string::npos);
  std::string minus = "x = " + std::string(5000, '-') + "1\n";
  EXPECT_FALSE(errors(minus).empty());
}

}  // namespace
}  // namespace vortex::flow
