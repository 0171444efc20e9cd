#include "flow/parser.h"

#include <algorithm>

#include "flow/lexer.h"

namespace vortex::flow {
namespace {

using ast::Expr;
using ast::ExprKind;
using ast::ExprPtr;
using ast::Stmt;
using ast::StmtKind;
using ast::StmtPtr;

// Thrown after a syntax error has been reported; the statement loop resynchronises.
struct SyntaxError {};

std::string describe(const Token& t) {
  switch (t.kind) {
    case TokenKind::kName:
      return "name '" + t.text + "'";
    case TokenKind::kKeyword:
      return "keyword '" + t.text + "'";
    case TokenKind::kOp:
      return "'" + t.text + "'";
    case TokenKind::kInt:
    case TokenKind::kFloat:
      return "number " + t.text;
    default:
      return token_kind_name(t.kind);
  }
}

class Parser {
 public:
  Parser(std::vector<Token> tokens, DiagnosticSink& sink)
      : tokens_(std::move(tokens)), sink_(sink) {}

  ast::Module parse_module() {
    ast::Module module;
    while (!at(TokenKind::kEnd)) {
      if (at(TokenKind::kNewline)) {
        ++pos_;
        continue;
      }
      parse_statement_into(module.body);
    }
    return module;
  }

 private:
  // ---- token helpers ----
  const Token& cur() const { return tokens_[pos_]; }
  const Token& next_token() const { return tokens_[std::min(pos_ + 1, tokens_.size() - 1)]; }
  bool at(TokenKind k) const { return cur().kind == k; }
  bool at_op(std::string_view op) const { return cur().kind == TokenKind::kOp && cur().text == op; }
  bool at_keyword(std::string_view kw) const {
    return cur().kind == TokenKind::kKeyword && cur().text == kw;
  }
  const Token& advance() {
    const Token& t = tokens_[pos_];
    if (t.kind != TokenKind::kEnd) ++pos_;
    return t;
  }

  [[noreturn]] void fail(SourceLoc loc, std::string message) {
    sink_.error(loc, std::move(message));
    throw SyntaxError{};
  }
  [[noreturn]] void fail_unexpected(std::string_view wanted) {
    std::string msg = "expected " + std::string(wanted) + ", found " + describe(cur());
    if (at(TokenKind::kIndent)) msg = "unexpected indent";
    fail(missing_at(), msg);
  }
  // Where a missing token belongs: at the current token, or, at the end of a line, just after
  // the line's last token (as Python reports it), not after a trailing comment.
  SourceLoc missing_at() const {
    const bool line_end = at(TokenKind::kNewline) || at(TokenKind::kEnd);
    if (!line_end || pos_ == 0) return cur().loc;
    const Token& prev = tokens_[pos_ - 1];
    if (prev.loc.line <= 0 || prev.kind == TokenKind::kNewline) return cur().loc;
    SourceLoc loc = prev.loc;
    if (prev.kind == TokenKind::kName || prev.kind == TokenKind::kKeyword ||
        prev.kind == TokenKind::kOp)
      loc.col += static_cast<int>(prev.text.size());
    return loc;
  }
  void expect_op(std::string_view op) {
    if (!at_op(op)) fail_unexpected("'" + std::string(op) + "'");
    advance();
  }
  std::string expect_name(std::string_view what) {
    if (!at(TokenKind::kName)) fail_unexpected(what);
    return advance().text;
  }

  // Guards recursion depth so that deeply nested input is an error, not a stack overflow.
  struct DepthGuard {
    Parser& p;
    explicit DepthGuard(Parser& parser, SourceLoc loc) : p(parser) {
      if (++p.depth_ > kMaxNestingDepth) {
        p.sink_.error(loc, "nesting is too deep: more than " + std::to_string(kMaxNestingDepth) +
                               " levels of brackets, calls, operators, blocks or elif (the "
                               "nesting limit)");
        throw CompileAborted{};
      }
    }
    ~DepthGuard() { --p.depth_; }
  };

  ExprPtr make(ExprKind kind, SourceLoc loc) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->loc = loc;
    return e;
  }
  // Sets the subtree height from the children; chains like a+a+...+a are bounded here.
  ExprPtr finish(ExprPtr e) {
    int d = 0;
    if (e->lhs) d = std::max(d, e->lhs->depth);
    if (e->rhs) d = std::max(d, e->rhs->depth);
    for (const ExprPtr& i : e->items)
      if (i) d = std::max(d, i->depth);
    for (const ast::Keyword& k : e->keywords)
      if (k.value) d = std::max(d, k.value->depth);
    e->depth = d + 1;
    if (e->depth > kMaxNestingDepth) {
      sink_.error(e->loc, "expression is nested too deeply: more than " +
                              std::to_string(kMaxNestingDepth) +
                              " levels of operators, calls or brackets (the nesting limit); "
                              "split it over several statements");
      throw CompileAborted{};
    }
    return e;
  }

  // Lists, tuples, argument lists and imports hold at most kMaxListItems items.
  void check_items(size_t count, SourceLoc loc, const char* what) {
    if (count <= static_cast<size_t>(kMaxListItems)) return;
    sink_.error(loc, std::string(what) + " has more than " + std::to_string(kMaxListItems) +
                         " items (the limit on list, tuple and argument counts)");
    throw CompileAborted{};
  }

  // ---- statements ----
  void parse_statement_into(std::vector<StmtPtr>& out) {
    size_t start = pos_;
    try {
      parse_statement(out);
    } catch (const SyntaxError&) {
      synchronize(start);
    }
  }

  // Skips the rest of a bad statement: to the end of its line, and its indented block if any.
  void synchronize(size_t start) {
    if (pos_ == start && !at(TokenKind::kEnd)) advance();
    while (!at(TokenKind::kEnd) && !at(TokenKind::kNewline)) {
      if (at(TokenKind::kIndent) || at(TokenKind::kDedent)) break;
      advance();
    }
    if (at(TokenKind::kNewline)) advance();
    if (at(TokenKind::kIndent)) skip_block();
  }

  void skip_block() {
    int level = 0;
    do {
      if (at(TokenKind::kIndent)) ++level;
      if (at(TokenKind::kDedent)) --level;
      if (at(TokenKind::kEnd)) return;
      advance();
    } while (level > 0);
  }

  void parse_statement(std::vector<StmtPtr>& out) {
    const Token& t = cur();
    if (at(TokenKind::kIndent)) {
      sink_.error(t.loc, "unexpected indent");
      skip_block();
      return;
    }
    if (at(TokenKind::kDedent)) fail(t.loc, "unexpected unindent");
    if (t.kind == TokenKind::kKeyword) {
      if (t.text == "if") return out.push_back(parse_if());
      if (t.text == "def") return out.push_back(parse_def());
      if (t.text == "class") return out.push_back(parse_class());
      if (t.text == "for" || t.text == "while")
        fail(t.loc, "loops are not allowed; use reductions (sum, max, ... over an axis)");
      if (t.text == "with" || t.text == "try" || t.text == "async")
        fail(t.loc, "'" + t.text + "' statements are not allowed in flows");
    }
    if (at_op("@")) fail(t.loc, "decorators are not allowed in flows");
    parse_simple_statements(out);
  }

  void parse_simple_statements(std::vector<StmtPtr>& out) {
    while (true) {
      out.push_back(parse_small_statement());
      if (at_op(";")) {
        advance();
        if (at(TokenKind::kNewline)) break;
        continue;
      }
      break;
    }
    if (!at(TokenKind::kNewline)) fail_unexpected("end of line");
    advance();
  }

  StmtPtr new_stmt(StmtKind kind, SourceLoc loc) {
    auto s = std::make_unique<Stmt>();
    s->kind = kind;
    s->loc = loc;
    return s;
  }

  StmtPtr parse_small_statement() {
    const Token& t = cur();
    SourceLoc loc = t.loc;
    if (t.kind == TokenKind::kKeyword) {
      const std::string& kw = t.text;
      if (kw == "pass") {
        advance();
        return new_stmt(StmtKind::kPass, loc);
      }
      if (kw == "return") {
        advance();
        StmtPtr s = new_stmt(StmtKind::kReturn, loc);
        if (!at(TokenKind::kNewline) && !at_op(";")) s->value = parse_expression_list();
        return s;
      }
      if (kw == "import") return parse_import();
      if (kw == "from") return parse_from_import();
      if (kw == "break" || kw == "continue")
        fail(loc, "'" + kw + "' is not allowed: flows have no loops");
      if (kw == "del" || kw == "global" || kw == "nonlocal" || kw == "assert" || kw == "raise" ||
          kw == "yield" || kw == "await")
        fail(loc, "'" + kw + "' statements are not allowed in flows");
      if (kw == "else" || kw == "elif") fail(loc, "'" + kw + "' without a matching 'if'");
    }
    ExprPtr first = parse_expression_list();
    if (at_op("=")) {
      SourceLoc eq = cur().loc;
      advance();
      StmtPtr s = new_stmt(StmtKind::kAssign, loc);
      s->target = std::move(first);
      s->value = parse_expression_list();
      if (at_op("=")) fail(eq, "chained assignment (a = b = ...) is not allowed; assign one name");
      return s;
    }
    if (cur().kind == TokenKind::kOp && cur().text.size() >= 2 && cur().text.back() == '=' &&
        cur().text != "==" && cur().text != "!=" && cur().text != "<=" && cur().text != ">=") {
      std::string op = cur().text.substr(0, cur().text.size() - 1);
      if (op == ":") fail(cur().loc, "':=' (assignment expression) is not allowed in flows");
      advance();
      StmtPtr s = new_stmt(StmtKind::kAugAssign, loc);
      s->text = op;
      s->target = std::move(first);
      s->value = parse_expression();
      return s;
    }
    if (at_op(":")) fail(cur().loc, "annotations are not allowed in flows; write `name = value`");
    StmtPtr s = new_stmt(StmtKind::kExpr, loc);
    s->value = std::move(first);
    return s;
  }

  StmtPtr parse_import() {
    StmtPtr s = new_stmt(StmtKind::kImport, advance().loc);
    s->aliases.push_back(parse_dotted_alias());
    while (at_op(",")) {
      advance();
      s->aliases.push_back(parse_dotted_alias());
      check_items(s->aliases.size(), s->loc, "this import");
    }
    return s;
  }

  std::string parse_dotted_name() {
    if (at_op("."))
      fail(cur().loc, "relative imports are not allowed; use `from vortex.flow import ...`");
    std::string name = expect_name("a module name");
    while (at_op(".")) {
      advance();
      name += "." + expect_name("a module name");
    }
    return name;
  }

  ast::Alias parse_dotted_alias() {
    ast::Alias a;
    a.loc = cur().loc;
    a.name = parse_dotted_name();
    a.as = a.name;
    if (at_keyword("as")) {
      advance();
      a.as = expect_name("a name after 'as'");
    }
    return a;
  }

  StmtPtr parse_from_import() {
    StmtPtr s = new_stmt(StmtKind::kImportFrom, advance().loc);
    s->text = parse_dotted_name();
    if (!at_keyword("import")) fail_unexpected("'import'");
    advance();
    bool paren = at_op("(");
    if (paren) advance();
    while (true) {
      ast::Alias a;
      a.loc = cur().loc;
      if (at_op("*")) {
        advance();
        a.name = a.as = "*";
      } else {
        a.name = a.as = expect_name("a name to import");
        if (at_keyword("as")) {
          advance();
          a.as = expect_name("a name after 'as'");
        }
      }
      s->aliases.push_back(std::move(a));
      check_items(s->aliases.size(), s->loc, "this import");
      if (!at_op(",")) break;
      advance();
      if (paren && at_op(")")) break;
    }
    if (paren) expect_op(")");
    return s;
  }

  std::vector<StmtPtr> parse_block() {
    DepthGuard guard(*this, cur().loc);
    expect_op(":");
    std::vector<StmtPtr> body;
    if (!at(TokenKind::kNewline)) {
      parse_simple_statements(body);
      return body;
    }
    advance();
    if (!at(TokenKind::kIndent)) fail(cur().loc, "expected an indented block");
    advance();
    while (!at(TokenKind::kDedent) && !at(TokenKind::kEnd)) {
      if (at(TokenKind::kNewline)) {
        advance();
        continue;
      }
      parse_statement_into(body);
    }
    if (at(TokenKind::kDedent)) advance();
    return body;
  }

  StmtPtr parse_if() {
    // elif recurses (it is an If inside orelse), so a long chain counts as nesting.
    DepthGuard guard(*this, cur().loc);
    StmtPtr s = new_stmt(StmtKind::kIf, advance().loc);
    s->value = parse_expression();
    s->body = parse_block();
    if (at_keyword("elif")) {
      s->orelse.push_back(parse_if());
    } else if (at_keyword("else")) {
      advance();
      s->orelse = parse_block();
    }
    return s;
  }

  StmtPtr parse_def() {
    StmtPtr s = new_stmt(StmtKind::kDef, advance().loc);
    s->text = expect_name("a function name");
    expect_op("(");
    while (!at_op(")")) {
      if (at_op("*") || at_op("**") || at_op("/"))
        fail(cur().loc, "parameters must be plain names (no *args, **kwargs or /)");
      ast::ParamDecl p;
      p.loc = cur().loc;
      p.name = expect_name("a parameter name");
      if (at_op(":") || at_op("="))
        fail(cur().loc, "parameters must be plain names (no annotations or defaults)");
      s->params.push_back(std::move(p));
      check_items(s->params.size(), s->loc, "this parameter list");
      if (!at_op(",")) break;
      advance();
    }
    expect_op(")");
    if (at_op("->")) fail(cur().loc, "return annotations are not allowed in flows");
    s->body = parse_block();
    return s;
  }

  StmtPtr parse_class() {
    StmtPtr s = new_stmt(StmtKind::kClass, advance().loc);
    s->text = expect_name("a class name");
    if (at_op("(")) {
      advance();
      while (!at_op(")")) {
        s->bases.push_back(parse_expression());
        check_items(s->bases.size(), s->loc, "this class's base list");
        if (at_op("=")) fail(cur().loc, "class keywords are not allowed in flows");
        if (!at_op(",")) break;
        advance();
      }
      expect_op(")");
    }
    s->body = parse_block();
    return s;
  }

  // ---- expressions ----
  // expression_list: an expression, or a tuple without parentheses (`a, b`).
  ExprPtr parse_expression_list() {
    SourceLoc loc = cur().loc;
    ExprPtr first = parse_expression();
    if (!at_op(",")) return first;
    ExprPtr tuple = make(ExprKind::kTuple, loc);
    tuple->items.push_back(std::move(first));
    while (at_op(",")) {
      advance();
      if (at(TokenKind::kNewline) || at_op("=") || at_op(")") || at_op(";")) break;
      tuple->items.push_back(parse_expression());
      check_items(tuple->items.size(), loc, "this tuple");
    }
    return finish(std::move(tuple));
  }

  ExprPtr parse_expression() {
    DepthGuard guard(*this, cur().loc);
    if (at_keyword("lambda")) fail(cur().loc, "lambda is not allowed in flows");
    if (at_keyword("yield") || at_keyword("await"))
      fail(cur().loc, "'" + cur().text + "' is not allowed in flows");
    ExprPtr e = parse_or();
    if (at_keyword("if"))
      fail(cur().loc,
           "conditional expressions (a if c else b) are not allowed; use where(c, a, b)");
    if (at_op(":=")) fail(cur().loc, "':=' (assignment expression) is not allowed in flows");
    return e;
  }

  ExprPtr parse_or() {
    ExprPtr lhs = parse_and();
    while (at_keyword("or")) lhs = binary(ExprKind::kBoolOp, std::move(lhs), &Parser::parse_and);
    return lhs;
  }
  ExprPtr parse_and() {
    ExprPtr lhs = parse_not();
    while (at_keyword("and")) lhs = binary(ExprKind::kBoolOp, std::move(lhs), &Parser::parse_not);
    return lhs;
  }
  ExprPtr parse_not() {
    if (at_keyword("not")) {
      DepthGuard guard(*this, cur().loc);
      ExprPtr e = make(ExprKind::kUnary, cur().loc);
      e->text = advance().text;
      e->lhs = parse_not();
      return finish(std::move(e));
    }
    return parse_comparison();
  }

  ExprPtr binary(ExprKind kind, ExprPtr lhs, ExprPtr (Parser::*rhs_parser)()) {
    ExprPtr e = make(kind, cur().loc);
    e->text = advance().text;
    e->lhs = std::move(lhs);
    e->rhs = (this->*rhs_parser)();
    return finish(std::move(e));
  }

  bool at_comparison() const {
    if (cur().kind == TokenKind::kOp) {
      const std::string& t = cur().text;
      return t == "<" || t == ">" || t == "==" || t == ">=" || t == "<=" || t == "!=";
    }
    return at_keyword("in") || at_keyword("is") ||
           (at_keyword("not") && next_token().kind == TokenKind::kKeyword &&
            next_token().text == "in");
  }

  ExprPtr parse_comparison() {
    ExprPtr lhs = parse_bitor();
    bool chained = false;
    while (at_comparison()) {
      if (cur().kind == TokenKind::kKeyword)
        fail(cur().loc, "'" + cur().text + "' comparisons are not allowed in flows");
      if (chained)
        fail(cur().loc, "chained comparisons (a < b < c) are not allowed; compare two values");
      lhs = binary(ExprKind::kCompare, std::move(lhs), &Parser::parse_bitor);
      chained = true;
    }
    return lhs;
  }

  ExprPtr parse_bitor() {
    ExprPtr lhs = parse_bitxor();
    while (at_op("|")) lhs = binary(ExprKind::kBinary, std::move(lhs), &Parser::parse_bitxor);
    return lhs;
  }
  ExprPtr parse_bitxor() {
    ExprPtr lhs = parse_bitand();
    while (at_op("^")) lhs = binary(ExprKind::kBinary, std::move(lhs), &Parser::parse_bitand);
    return lhs;
  }
  ExprPtr parse_bitand() {
    ExprPtr lhs = parse_shift();
    while (at_op("&")) lhs = binary(ExprKind::kBinary, std::move(lhs), &Parser::parse_shift);
    return lhs;
  }
  ExprPtr parse_shift() {
    ExprPtr lhs = parse_arith();
    while (at_op("<<") || at_op(">>"))
      lhs = binary(ExprKind::kBinary, std::move(lhs), &Parser::parse_arith);
    return lhs;
  }
  ExprPtr parse_arith() {
    ExprPtr lhs = parse_term();
    while (at_op("+") || at_op("-"))
      lhs = binary(ExprKind::kBinary, std::move(lhs), &Parser::parse_term);
    return lhs;
  }
  ExprPtr parse_term() {
    ExprPtr lhs = parse_factor();
    while (at_op("*") || at_op("/") || at_op("//") || at_op("%") || at_op("@"))
      lhs = binary(ExprKind::kBinary, std::move(lhs), &Parser::parse_factor);
    return lhs;
  }
  ExprPtr parse_factor() {
    if (at_op("-") || at_op("+") || at_op("~")) {
      DepthGuard guard(*this, cur().loc);
      ExprPtr e = make(ExprKind::kUnary, cur().loc);
      e->text = advance().text;
      e->lhs = parse_factor();
      return finish(std::move(e));
    }
    return parse_power();
  }
  ExprPtr parse_power() {
    ExprPtr base = parse_primary();
    if (at_op("**")) {
      DepthGuard guard(*this, cur().loc);
      return binary(ExprKind::kBinary, std::move(base), &Parser::parse_factor);
    }
    return base;
  }

  ExprPtr parse_primary() {
    ExprPtr e = parse_atom();
    while (true) {
      if (at_op(".")) {
        advance();
        ExprPtr a = make(ExprKind::kAttribute, cur().loc);
        a->text = expect_name("an attribute name after '.'");
        a->lhs = std::move(e);
        e = finish(std::move(a));
      } else if (at_op("(")) {
        e = parse_call(std::move(e));
      } else if (at_op("[")) {
        e = parse_subscript(std::move(e));
      } else {
        return e;
      }
    }
  }

  ExprPtr parse_call(ExprPtr callee) {
    ExprPtr call = make(ExprKind::kCall, callee->loc);
    call->lhs = std::move(callee);
    advance();  // (
    while (!at_op(")")) {
      if (at_op("*") || at_op("**")) fail(cur().loc, "*args and **kwargs are not allowed in flows");
      if (at(TokenKind::kName) && next_token().kind == TokenKind::kOp && next_token().text == "=") {
        ast::Keyword k;
        k.loc = cur().loc;
        k.name = advance().text;
        advance();  // =
        k.value = parse_expression();
        call->keywords.push_back(std::move(k));
      } else {
        SourceLoc loc = cur().loc;
        ExprPtr arg = parse_expression();
        if (at_keyword("for")) fail(cur().loc, "comprehensions are not allowed in flows");
        if (!call->keywords.empty())
          fail(loc, "a positional argument cannot follow a keyword argument");
        call->items.push_back(std::move(arg));
      }
      check_items(call->items.size() + call->keywords.size(), call->loc, "this call");
      if (!at_op(",")) break;
      advance();
    }
    expect_op(")");
    return finish(std::move(call));
  }

  ExprPtr parse_subscript(ExprPtr object) {
    ExprPtr sub = make(ExprKind::kSubscript, object->loc);
    sub->lhs = std::move(object);
    advance();  // [
    while (!at_op("]")) {
      sub->items.push_back(parse_slice_item());
      check_items(sub->items.size(), sub->loc, "this subscript");
      if (!at_op(",")) break;
      advance();
    }
    if (sub->items.empty()) fail(cur().loc, "empty subscript []");
    expect_op("]");
    return finish(std::move(sub));
  }

  ExprPtr parse_slice_item() {
    SourceLoc loc = cur().loc;
    ExprPtr start;
    if (!at_op(":")) {
      start = parse_expression();
      if (!at_op(":")) return start;
    }
    ExprPtr slice = make(ExprKind::kSlice, loc);
    advance();  // :
    ExprPtr stop, step;
    if (!at_op(":") && !at_op(",") && !at_op("]")) stop = parse_expression();
    if (at_op(":")) {
      advance();
      if (!at_op(",") && !at_op("]")) step = parse_expression();
    }
    slice->items.push_back(std::move(start));
    slice->items.push_back(std::move(stop));
    slice->items.push_back(std::move(step));
    return finish(std::move(slice));
  }

  ExprPtr parse_atom() {
    const Token& t = cur();
    SourceLoc loc = t.loc;
    switch (t.kind) {
      case TokenKind::kName: {
        ExprPtr e = make(ExprKind::kName, loc);
        e->text = advance().text;
        return e;
      }
      case TokenKind::kInt: {
        ExprPtr e = make(ExprKind::kInt, loc);
        e->int_value = t.int_value;
        advance();
        return e;
      }
      case TokenKind::kFloat: {
        ExprPtr e = make(ExprKind::kFloat, loc);
        e->float_value = t.float_value;
        advance();
        return e;
      }
      case TokenKind::kString: {
        ExprPtr e = make(ExprKind::kString, loc);
        while (at(TokenKind::kString)) e->text += advance().text;  // adjacent literals join
        return e;
      }
      case TokenKind::kKeyword: {
        if (t.text == "None" || t.text == "True" || t.text == "False") {
          ExprPtr e = make(t.text == "None" ? ExprKind::kNone : ExprKind::kBool, loc);
          e->bool_value = t.text == "True";
          advance();
          return e;
        }
        if (t.text == "lambda") fail(loc, "lambda is not allowed in flows");
        fail(loc, "unexpected keyword '" + t.text + "'");
      }
      case TokenKind::kOp: {
        if (t.text == "...") {
          advance();
          return make(ExprKind::kEllipsis, loc);
        }
        if (t.text == "(") return parse_paren();
        if (t.text == "[") return parse_list();
        if (t.text == "{") fail(loc, "dicts and sets are not allowed in flows");
        break;
      }
      default:
        break;
    }
    fail_unexpected("an expression");
  }

  ExprPtr parse_paren() {
    DepthGuard guard(*this, cur().loc);
    SourceLoc loc = advance().loc;  // (
    if (at_op(")")) {
      advance();
      return make(ExprKind::kTuple, loc);
    }
    ExprPtr first = parse_expression();
    if (at_keyword("for")) fail(cur().loc, "generator expressions are not allowed in flows");
    if (at_op(")")) {
      advance();
      return first;
    }
    ExprPtr tuple = make(ExprKind::kTuple, loc);
    tuple->items.push_back(std::move(first));
    while (at_op(",")) {
      advance();
      if (at_op(")")) break;
      tuple->items.push_back(parse_expression());
      check_items(tuple->items.size(), loc, "this tuple");
    }
    expect_op(")");
    return finish(std::move(tuple));
  }

  ExprPtr parse_list() {
    DepthGuard guard(*this, cur().loc);
    ExprPtr list = make(ExprKind::kList, advance().loc);  // [
    while (!at_op("]")) {
      list->items.push_back(parse_expression());
      check_items(list->items.size(), list->loc, "this list");
      if (at_keyword("for")) fail(cur().loc, "list comprehensions are not allowed in flows");
      if (!at_op(",")) break;
      advance();
    }
    expect_op("]");
    return finish(std::move(list));
  }

  std::vector<Token> tokens_;
  DiagnosticSink& sink_;
  size_t pos_ = 0;
  int depth_ = 0;
};

}  // namespace

ast::Module parse_flow_source(std::string_view source, DiagnosticSink& sink) {
  std::vector<Token> tokens = tokenize(source, sink);
  if (sink.has_errors() || tokens.empty()) return {};
  return Parser(std::move(tokens), sink).parse_module();
}

}  // namespace vortex::flow
