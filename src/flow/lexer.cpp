#include "flow/lexer.h"

#include <array>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "core/error.h"
#include "flow/limits.h"

namespace vortex::flow {

const char* token_kind_name(TokenKind k) {
  switch (k) {
    case TokenKind::kName:
      return "name";
    case TokenKind::kKeyword:
      return "keyword";
    case TokenKind::kInt:
      return "integer";
    case TokenKind::kFloat:
      return "number";
    case TokenKind::kString:
      return "string";
    case TokenKind::kOp:
      return "operator";
    case TokenKind::kNewline:
      return "end of line";
    case TokenKind::kIndent:
      return "indent";
    case TokenKind::kDedent:
      return "dedent";
    case TokenKind::kEnd:
      return "end of file";
  }
  return "?";
}

namespace {

constexpr std::array<std::string_view, 35> kKeywords = {
    "False", "None",     "True",  "and",    "as",   "assert", "async",  "await",    "break",
    "class", "continue", "def",   "del",    "elif", "else",   "except", "finally",  "for",
    "from",  "global",   "if",    "import", "in",   "is",     "lambda", "nonlocal", "not",
    "or",    "pass",     "raise", "return", "try",  "while",  "with",   "yield"};

// Longest first so that the first match is the longest.
constexpr std::array<std::string_view, 47> kOperators = {
    "**=", "//=", ">>=", "<<=", "...", "**", "//", "==", "!=", "<=", ">=", "->",
    "+=",  "-=",  "*=",  "/=",  "%=",  "@=", "&=", "|=", "^=", ":=", "<<", ">>",
    "+",   "-",   "*",   "/",   "%",   "@",  "<",  ">",  "=",  "(",  ")",  "[",
    "]",   "{",   "}",   ",",   ":",   ".",  ";",  "~",  "&",  "|",  "^"};

bool is_name_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_name_char(char c) {
  return is_name_start(c) || is_digit(c);
}

class Lexer {
 public:
  Lexer(std::string_view src, DiagnosticSink& sink) : src_(src), sink_(sink) {}

  std::vector<Token> run() {
    indents_.push_back(0);
    alt_indents_.push_back(0);
    // A UTF-8 byte order mark at the start is skipped, as Python does; columns count after it.
    if (src_.substr(0, 3) == "\xEF\xBB\xBF") pos_ = line_start_ = 3;
    if (!check_encoding()) return {};
    while (pos_ < src_.size() && !failed_) {
      if (at_line_start_ && brackets_.empty()) {
        if (!handle_indentation()) continue;
      }
      lex_one();
    }
    if (!failed_) finish();
    return std::move(tokens_);
  }

 private:
  SourceLoc here() const { return SourceLoc{line_, static_cast<int>(pos_ - line_start_) + 1}; }
  char peek(size_t ahead = 0) const {
    return pos_ + ahead < src_.size() ? src_[pos_ + ahead] : '\0';
  }

  void error(SourceLoc loc, std::string message) {
    sink_.error(loc, std::move(message));
    failed_ = true;
  }

  void push(TokenKind kind, std::string text, SourceLoc loc) {
    Token t;
    t.kind = kind;
    t.text = std::move(text);
    t.loc = loc;
    tokens_.push_back(std::move(t));
  }

  void newline_char() {
    ++pos_;
    ++line_;
    line_start_ = pos_;
  }

  // The whole file must be UTF-8 text without NUL bytes (Python refuses both, in comments and
  // strings too). Reports the first bad byte at its line and column; false if there is one.
  bool check_encoding() {
    int line = 1;
    size_t line_start = pos_;
    for (size_t i = pos_; i < src_.size();) {
      const auto c = static_cast<unsigned char>(src_[i]);
      SourceLoc loc{line, static_cast<int>(i - line_start) + 1};
      if (c == '\n') {
        ++line;
        line_start = ++i;
        continue;
      }
      if (c == 0) {
        error(loc, "NUL byte in the flow file (is it a binary file?); a flow file is UTF-8 text");
        return false;
      }
      if (c < 0x80) {
        ++i;
        continue;
      }
      // Well-formed UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF.
      size_t len = 0;
      unsigned char lo = 0x80, hi = 0xBF;
      if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
      } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
      } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
      }
      bool ok = len > 0 && i + len <= src_.size();
      for (size_t k = 1; ok && k < len; ++k) {
        const auto b = static_cast<unsigned char>(src_[i + k]);
        ok = k == 1 ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xBF);
      }
      if (!ok) {
        char hex[8];
        std::snprintf(hex, sizeof hex, "0x%02x", c);
        error(loc, std::string("invalid UTF-8 (byte ") + hex + "); a flow file is UTF-8 text");
        return false;
      }
      i += len;
    }
    return true;
  }

  // At the start of a logical line: measure indentation, skip blank and comment-only lines.
  // Returns false when the line was blank (the caller loops again).
  bool handle_indentation() {
    // Python's rule: a tab advances to the next multiple of 8, and the indentation must compare
    // the same way with a tab counted as one column (`alt`), else it depends on the tab size.
    int width = 0, alt = 0;
    size_t p = pos_;
    while (p < src_.size() && (src_[p] == ' ' || src_[p] == '\t' || src_[p] == '\f')) {
      if (src_[p] == '\t') {
        width = (width / 8 + 1) * 8;
        ++alt;
      } else if (src_[p] == ' ') {
        ++width;
        ++alt;
      } else {
        width = alt = 0;
      }
      if (width > (1 << 20)) width = alt = 1 << 20;  // deeper than any block can be; no overflow
      ++p;
    }
    char c = p < src_.size() ? src_[p] : '\0';
    if (c == '\n' || c == '\r' || c == '#' || p >= src_.size()) {
      // Blank or comment-only line: no tokens, no indentation change.
      pos_ = p;
      while (pos_ < src_.size() && src_[pos_] != '\n') ++pos_;
      if (pos_ < src_.size()) newline_char();
      return false;
    }
    pos_ = p;
    at_line_start_ = false;
    SourceLoc loc = here();
    const char* tab_error =
        "inconsistent use of tabs and spaces in indentation: indent with spaces only (or tabs "
        "only)";
    if (width > indents_.back()) {
      if (alt <= alt_indents_.back()) {
        error(loc, tab_error);
        return true;
      }
      indents_.push_back(width);
      alt_indents_.push_back(alt);
      push(TokenKind::kIndent, "", loc);
    } else {
      while (width < indents_.back()) {
        indents_.pop_back();
        alt_indents_.pop_back();
        push(TokenKind::kDedent, "", loc);
      }
      if (width != indents_.back()) {
        error(loc, "unindent does not match any outer indentation level");
      } else if (alt != alt_indents_.back()) {
        error(loc, tab_error);
      }
    }
    return true;
  }

  void lex_one() {
    char c = peek();
    if (c == ' ' || c == '\t' || c == '\f') {
      ++pos_;
      return;
    }
    if (c == '\r' && peek(1) == '\n') {
      ++pos_;
      return;
    }
    if (c == '\n' || c == '\r') {
      if (brackets_.empty()) {
        push(TokenKind::kNewline, "", here());
        at_line_start_ = true;
      }
      newline_char();
      return;
    }
    if (c == '#') {
      while (pos_ < src_.size() && src_[pos_] != '\n') ++pos_;
      return;
    }
    if (c == '\\') {
      size_t p = pos_ + 1;
      if (p < src_.size() && src_[p] == '\r') ++p;
      if (p < src_.size() && src_[p] == '\n') {
        pos_ = p;
        newline_char();
        return;
      }
      if (p >= src_.size()) {
        error(here(), "unexpected end of file after line continuation character '\\'");
        return;
      }
      error(here(), "unexpected character after line continuation character '\\'");
      return;
    }
    if (is_name_start(c)) {
      // String prefixes (r, b, u, f and pairs) directly followed by a quote.
      size_t p = pos_;
      while (p < src_.size() && p - pos_ < 2 &&
             std::string_view("rRbBuUfF").find(src_[p]) != std::string_view::npos)
        ++p;
      if (p > pos_ && p < src_.size() && (src_[p] == '\'' || src_[p] == '"')) {
        bool raw = false;
        for (size_t i = pos_; i < p; ++i) raw = raw || src_[i] == 'r' || src_[i] == 'R';
        SourceLoc loc = here();
        pos_ = p;
        lex_string(loc, raw);
        return;
      }
      lex_name();
      return;
    }
    if (is_digit(c) || (c == '.' && is_digit(peek(1)))) {
      lex_number();
      return;
    }
    if (c == '\'' || c == '"') {
      lex_string(here(), false);
      return;
    }
    lex_operator();
  }

  void lex_name() {
    SourceLoc loc = here();
    size_t start = pos_;
    while (pos_ < src_.size() && is_name_char(src_[pos_])) ++pos_;
    if (pos_ < src_.size() && static_cast<unsigned char>(src_[pos_]) >= 0x80) {
      error(here(), "non-ASCII characters are not allowed in names");
      return;
    }
    if (pos_ - start > static_cast<size_t>(kMaxNameLength)) {
      error(loc, "a name of " + std::to_string(pos_ - start) + " characters ('" +
                     printable(src_.substr(start, 24), 24) + "'); names are limited to " +
                     std::to_string(kMaxNameLength) + " characters");
      return;
    }
    std::string text(src_.substr(start, pos_ - start));
    bool keyword = false;
    for (std::string_view k : kKeywords) keyword = keyword || k == text;
    push(keyword ? TokenKind::kKeyword : TokenKind::kName, std::move(text), loc);
  }

  void lex_number() {
    SourceLoc loc = here();
    size_t start = pos_;
    std::string digits;
    bool is_float = false;
    int base = 10;
    if (peek() == '0' && (peek(1) == 'x' || peek(1) == 'X' || peek(1) == 'o' || peek(1) == 'O' ||
                          peek(1) == 'b' || peek(1) == 'B')) {
      char b = peek(1);
      base = (b == 'x' || b == 'X') ? 16 : (b == 'o' || b == 'O') ? 8 : 2;
      pos_ += 2;
      while (pos_ < src_.size() &&
             (std::isxdigit(static_cast<unsigned char>(src_[pos_])) || src_[pos_] == '_')) {
        if (src_[pos_] != '_') digits += src_[pos_];
        ++pos_;
      }
    } else {
      auto take_digits = [&] {
        while (pos_ < src_.size() && (is_digit(src_[pos_]) || src_[pos_] == '_')) {
          if (src_[pos_] != '_') digits += src_[pos_];
          ++pos_;
        }
      };
      take_digits();
      if (peek() == '.') {
        is_float = true;
        digits += '.';
        ++pos_;
        take_digits();
      }
      if (peek() == 'e' || peek() == 'E') {
        size_t save = pos_;
        std::string save_digits = digits;
        digits += 'e';
        ++pos_;
        if (peek() == '+' || peek() == '-') digits += src_[pos_++];
        if (is_digit(peek())) {
          is_float = true;
          take_digits();
        } else {
          pos_ = save;
          digits = save_digits;
        }
      }
    }
    if (pos_ < src_.size() && (is_name_char(src_[pos_]))) {
      if (src_[pos_] == 'j' || src_[pos_] == 'J') {
        error(loc, "complex numbers are not supported in flows");
      } else {
        error(loc, "invalid number literal '" +
                       printable(src_.substr(start, pos_ - start + 1), 40) + "'");
      }
      return;
    }
    Token t;
    t.loc = loc;
    t.text = printable(src_.substr(start, pos_ - start), 40);
    errno = 0;
    if (is_float) {
      t.kind = TokenKind::kFloat;
      t.float_value = std::strtod(digits.c_str(), nullptr);
      if (!std::isfinite(t.float_value)) {
        error(loc, "number literal '" + t.text +
                       "' is too large: it is not a finite double (the largest is about 1.8e308)");
        return;
      }
    } else {
      if (digits.empty()) {
        error(loc, "invalid number literal '" + t.text + "'");
        return;
      }
      char* end = nullptr;
      long long v = std::strtoll(digits.c_str(), &end, base);
      if (errno == ERANGE || (end && *end != '\0')) {
        error(loc, "integer literal '" + t.text +
                       "' is invalid or too large (integers are 64-bit: at most 2**63 - 1)");
        return;
      }
      t.kind = TokenKind::kInt;
      t.int_value = v;
      t.float_value = static_cast<double>(v);
    }
    tokens_.push_back(std::move(t));
  }

  void lex_string(SourceLoc loc, bool raw) {
    char quote = peek();
    bool triple = peek(1) == quote && peek(2) == quote;
    pos_ += triple ? 3 : 1;
    std::string value;
    while (true) {
      if (pos_ >= src_.size()) {
        error(loc, triple ? "unterminated triple-quoted string" : "unterminated string literal");
        return;
      }
      char c = src_[pos_];
      if (c == '\\' && pos_ + 1 < src_.size()) {
        char n = src_[pos_ + 1];
        if (n == '\n') {
          pos_ += 1;
          newline_char();
          continue;
        }
        if (raw) value += c;
        value += raw ? n : (n == 'n' ? '\n' : n == 't' ? '\t' : n);
        pos_ += 2;
        continue;
      }
      if (c == '\n') {
        if (!triple) {
          error(loc, "unterminated string literal");
          return;
        }
        value += c;
        newline_char();
        continue;
      }
      if (c == quote && (!triple || (peek(1) == quote && peek(2) == quote))) {
        pos_ += triple ? 3 : 1;
        break;
      }
      value += c;
      ++pos_;
    }
    push(TokenKind::kString, std::move(value), loc);
  }

  void lex_operator() {
    SourceLoc loc = here();
    for (std::string_view op : kOperators) {
      if (src_.substr(pos_, op.size()) != op) continue;
      pos_ += op.size();
      if (op == "(" || op == "[" || op == "{") {
        brackets_.push_back({op[0], loc});
      } else if (op == ")" || op == "]" || op == "}") {
        char open = op == ")" ? '(' : op == "]" ? '[' : '{';
        if (brackets_.empty()) {
          error(loc, "unmatched '" + std::string(op) + "'");
          return;
        }
        if (brackets_.back().first != open) {
          error(loc, "closing '" + std::string(op) + "' does not match '" +
                         std::string(1, brackets_.back().first) + "' opened at line " +
                         std::to_string(brackets_.back().second.line) + ":" +
                         std::to_string(brackets_.back().second.col));
          return;
        }
        brackets_.pop_back();
      }
      push(TokenKind::kOp, std::string(op), loc);
      return;
    }
    unsigned char c = static_cast<unsigned char>(peek());
    if (c >= 0x80) {
      error(loc, "non-ASCII character outside a string or comment");
    } else if (c == '!') {
      error(loc, "invalid character '!': use 'not' or '!='");
    } else if (c >= 0x21 && c < 0x7f) {
      error(loc, std::string("invalid character '") + static_cast<char>(c) + "'");
    } else {
      error(loc, "invalid control character (byte " + std::to_string(c) + ")");
    }
  }

  void finish() {
    SourceLoc loc = here();
    if (!brackets_.empty()) {
      auto [open, at] = brackets_.back();
      error(at, std::string("'") + open + "' was never closed");
      return;
    }
    if (!tokens_.empty() && tokens_.back().kind != TokenKind::kNewline &&
        tokens_.back().kind != TokenKind::kDedent && tokens_.back().kind != TokenKind::kIndent)
      push(TokenKind::kNewline, "", loc);
    while (indents_.size() > 1) {
      indents_.pop_back();
      push(TokenKind::kDedent, "", loc);
    }
    push(TokenKind::kEnd, "", loc);
  }

  std::string_view src_;
  DiagnosticSink& sink_;
  std::vector<Token> tokens_;
  std::vector<int> indents_;
  std::vector<int> alt_indents_;  // the same levels with a tab counted as one column
  std::vector<std::pair<char, SourceLoc>> brackets_;
  size_t pos_ = 0;
  size_t line_start_ = 0;
  int line_ = 1;
  bool at_line_start_ = true;
  bool failed_ = false;
};

}  // namespace

std::vector<Token> tokenize(std::string_view source, DiagnosticSink& sink) {
  if (source.find('\r') == std::string_view::npos) return Lexer(source, sink).run();
  // Line ends as Python reads them: "\r\n", "\r" and "\n" all end a line. Lines and columns
  // are the same in the normalized text (diagnostics.cpp splits the original alike).
  std::string text;
  text.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] != '\r') {
      text += source[i];
    } else if (i + 1 >= source.size() || source[i + 1] != '\n') {
      text += '\n';
    }
  }
  return Lexer(text, sink).run();
}

}  // namespace vortex::flow
