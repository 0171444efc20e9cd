#include "flow/constant.h"

#include <cmath>
#include <cstdint>
#include <cstdio>

namespace vortex::flow {

ConstValue ConstValue::integer(int64_t v) {
  ConstValue c;
  c.kind = Kind::kInt;
  c.i = v;
  c.f = static_cast<double>(v);
  return c;
}
ConstValue ConstValue::real(double v) {
  ConstValue c;
  c.kind = Kind::kFloat;
  c.f = v;
  return c;
}
ConstValue ConstValue::boolean(bool v) {
  ConstValue c;
  c.kind = Kind::kBool;
  c.b = v;
  c.i = v ? 1 : 0;
  c.f = v ? 1.0 : 0.0;
  return c;
}
ConstValue ConstValue::none() {
  return ConstValue{};
}
ConstValue ConstValue::dim(const Dim& d) {
  if (d.is_constant()) return integer(d.num);
  ConstValue c;
  c.kind = Kind::kSym;
  c.sym = d;
  return c;
}

double ConstValue::as_double() const {
  if (kind == Kind::kFloat) return f;
  if (kind == Kind::kBool) return b ? 1.0 : 0.0;
  return static_cast<double>(i);
}

std::optional<Dim> ConstValue::as_dim() const {
  if (kind == Kind::kInt) return Dim::constant(i);
  if (kind == Kind::kSym) return sym;
  return std::nullopt;
}

const char* const_kind_name(ConstValue::Kind k) {
  switch (k) {
    case ConstValue::Kind::kInt:
      return "integer";
    case ConstValue::Kind::kFloat:
      return "number";
    case ConstValue::Kind::kBool:
      return "boolean";
    case ConstValue::Kind::kNone:
      return "None";
    case ConstValue::Kind::kSym:
      return "dim";
    case ConstValue::Kind::kTuple:
      return "tuple";
    case ConstValue::Kind::kList:
      return "list";
    case ConstValue::Kind::kString:
      return "string";
    case ConstValue::Kind::kEllipsis:
      return "...";
  }
  return "?";
}

std::string const_to_string(const ConstValue& v) {
  switch (v.kind) {
    case ConstValue::Kind::kInt:
      return std::to_string(v.i);
    case ConstValue::Kind::kFloat: {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.9g", v.f);
      return buf;
    }
    case ConstValue::Kind::kBool:
      return v.b ? "True" : "False";
    case ConstValue::Kind::kNone:
      return "None";
    case ConstValue::Kind::kSym:
      return dim_to_string(v.sym);
    case ConstValue::Kind::kString:
      return "'" + v.s + "'";
    case ConstValue::Kind::kEllipsis:
      return "...";
    case ConstValue::Kind::kTuple:
    case ConstValue::Kind::kList: {
      std::string out = v.kind == ConstValue::Kind::kTuple ? "(" : "[";
      for (size_t i = 0; i < v.items.size(); ++i) {
        if (i) out += ", ";
        out += const_to_string(v.items[i]);
      }
      if (v.kind == ConstValue::Kind::kTuple && v.items.size() == 1) out += ",";
      out += v.kind == ConstValue::Kind::kTuple ? ")" : "]";
      return out;
    }
  }
  return "?";
}

namespace {

using Kind = ConstValue::Kind;

bool is_intlike(const ConstValue& v) {
  return v.kind == Kind::kInt || v.kind == Kind::kBool;
}
int64_t int_of(const ConstValue& v) {
  return v.kind == Kind::kBool ? (v.b ? 1 : 0) : v.i;
}

int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

ConstResult ok(ConstValue v) {
  return ConstResult{std::move(v), ""};
}
ConstResult not_representable() {
  return ConstResult{};
}
ConstResult error(std::string msg) {
  return ConstResult{std::nullopt, std::move(msg)};
}

// A float result, which must be finite: flows have no inf or NaN constants (Python raises
// OverflowError for most such results; the rest would poison every score silently).
ConstResult finite(double v) {
  if (std::isnan(v)) return error("a constant is not a number (NaN)");
  if (!std::isfinite(v)) return error("a constant is infinite: it overflows a double");
  return ok(ConstValue::real(v));
}

ConstResult compare(const std::string& op, double x, double y) {
  bool r = op == "<"    ? x < y
           : op == "<=" ? x <= y
           : op == ">"  ? x > y
           : op == ">=" ? x >= y
           : op == "==" ? x == y
                        : x != y;
  return ok(ConstValue::boolean(r));
}

bool is_comparison(const std::string& op) {
  return op == "<" || op == "<=" || op == ">" || op == ">=" || op == "==" || op == "!=";
}

ConstResult int_binary(const std::string& op, int64_t a, int64_t b) {
  int64_t r = 0;
  if (op == "+") {
    if (__builtin_add_overflow(a, b, &r)) return error("integer overflow in a constant");
    return ok(ConstValue::integer(r));
  }
  if (op == "-") {
    if (__builtin_sub_overflow(a, b, &r)) return error("integer overflow in a constant");
    return ok(ConstValue::integer(r));
  }
  if (op == "*") {
    if (__builtin_mul_overflow(a, b, &r)) return error("integer overflow in a constant");
    return ok(ConstValue::integer(r));
  }
  if (op == "/") {
    if (b == 0) return error("division by zero in a constant expression");
    return finite(static_cast<double>(a) / static_cast<double>(b));
  }
  if (op == "//" || op == "%") {
    if (b == 0) return error("division by zero in a constant expression");
    if (a == INT64_MIN && b == -1) return error("integer overflow in a constant");
    int64_t q = floor_div(a, b);
    return ok(ConstValue::integer(op == "//" ? q : a - q * b));
  }
  if (op == "**") {
    if (b < 0) {
      // Python gives a float; 0 to a negative power is a ZeroDivisionError there.
      if (a == 0) return error("0 cannot be raised to a negative power (division by zero)");
      return finite(std::pow(static_cast<double>(a), static_cast<double>(b)));
    }
    // Square and multiply: O(log b) steps whatever b is, every product checked.
    int64_t result = 1, base = a;
    for (int64_t e = b; e > 0; e >>= 1) {
      if ((e & 1) && __builtin_mul_overflow(result, base, &result))
        return error("integer overflow in a constant (integers are 64-bit)");
      if (e > 1 && __builtin_mul_overflow(base, base, &base))
        return error("integer overflow in a constant (integers are 64-bit)");
    }
    return ok(ConstValue::integer(result));
  }
  if (op == "<") return ok(ConstValue::boolean(a < b));
  if (op == "<=") return ok(ConstValue::boolean(a <= b));
  if (op == ">") return ok(ConstValue::boolean(a > b));
  if (op == ">=") return ok(ConstValue::boolean(a >= b));
  if (op == "==") return ok(ConstValue::boolean(a == b));
  if (op == "!=") return ok(ConstValue::boolean(a != b));
  return not_representable();
}

ConstResult float_binary(const std::string& op, double a, double b) {
  if (op == "+") return finite(a + b);
  if (op == "-") return finite(a - b);
  if (op == "*") return finite(a * b);
  if (op == "/" || op == "//" || op == "%") {
    if (b == 0.0) return error("division by zero in a constant expression");
    if (op == "/") return finite(a / b);
    // Python's float modulo: the sign of the divisor, from fmod (exact), not a - floor(a/b)*b.
    double m = std::fmod(a, b);
    if (m != 0.0 && ((m < 0) != (b < 0))) m += b;
    if (op == "%") return finite(m);
    return finite(std::round((a - m) / b));
  }
  if (op == "**") {
    if (a == 0.0 && b < 0)
      return error("0.0 cannot be raised to a negative power (division by zero)");
    double r = std::pow(a, b);
    if (std::isnan(r)) return error("constant power is not a real number");
    return finite(r);
  }
  if (is_comparison(op)) return compare(op, a, b);
  return not_representable();
}

// Symbolic dims: c * S with S a positive geometry symbol.
ConstResult sym_binary(const std::string& op, const ConstValue& a, const ConstValue& b) {
  bool a_sym = a.kind == Kind::kSym, b_sym = b.kind == Kind::kSym;
  if (a_sym && b_sym) {
    if (a.sym.symbol != b.sym.symbol) return not_representable();
    const Dim& x = a.sym;
    const Dim& y = b.sym;
    if (op == "+" || op == "-") {
      int64_t l = 0, r = 0, num = 0, den = 0;
      if (__builtin_mul_overflow(x.num, y.den, &l) || __builtin_mul_overflow(y.num, x.den, &r) ||
          __builtin_mul_overflow(x.den, y.den, &den) ||
          (op == "+" ? __builtin_add_overflow(l, r, &num) : __builtin_sub_overflow(l, r, &num)))
        return error("integer overflow in a constant");
      return ok(ConstValue::dim(Dim::of(x.symbol, num, den)));
    }
    double ratio = (static_cast<double>(x.num) / x.den) / (static_cast<double>(y.num) / y.den);
    if (op == "/") return finite(ratio);
    if (op == "//") {
      const double q = std::floor(ratio);
      if (!(std::fabs(q) < 9.0e18)) return error("integer overflow in a constant");
      return ok(ConstValue::integer(static_cast<int64_t>(q)));
    }
    if (is_comparison(op))
      return compare(op, static_cast<double>(x.num) / x.den, static_cast<double>(y.num) / y.den);
    return not_representable();
  }
  const ConstValue& s = a_sym ? a : b;
  const ConstValue& n = a_sym ? b : a;
  if (!is_intlike(n)) return not_representable();
  int64_t k = int_of(n);
  const Dim& d = s.sym;
  int64_t r = 0;
  if (op == "*") {
    if (__builtin_mul_overflow(d.num, k, &r) || r == INT64_MIN)
      return error("integer overflow in a constant");
    return ok(ConstValue::dim(Dim::of(d.symbol, r, d.den)));
  }
  if ((op == "/" || op == "//") && a_sym) {
    if (k == 0) return error("division by zero in a constant expression");
    if (__builtin_mul_overflow(d.den, k, &r) || r == INT64_MIN)
      return error("integer overflow in a constant");
    return ok(ConstValue::dim(Dim::of(d.symbol, d.num, r)));
  }
  return not_representable();
}

}  // namespace

ConstResult const_binary(const std::string& op, const ConstValue& a, const ConstValue& b) {
  if (a.kind == Kind::kSym || b.kind == Kind::kSym) {
    if (!(a.kind == Kind::kSym || a.is_number()) || !(b.kind == Kind::kSym || b.is_number()))
      return not_representable();
    return sym_binary(op, a, b);
  }
  if (!a.is_number() || !b.is_number()) {
    if (op == "==" || op == "!=") {
      bool same = a.kind == b.kind && const_to_string(a) == const_to_string(b);
      return ok(ConstValue::boolean(op == "==" ? same : !same));
    }
    return not_representable();
  }
  if (is_intlike(a) && is_intlike(b)) return int_binary(op, int_of(a), int_of(b));
  return float_binary(op, a.as_double(), b.as_double());
}

ConstResult const_negate(const ConstValue& a) {
  if (a.kind == Kind::kSym) {
    if (a.sym.num == INT64_MIN) return error("integer overflow in a constant");
    return ok(ConstValue::dim(Dim::of(a.sym.symbol, -a.sym.num, a.sym.den)));
  }
  if (is_intlike(a)) {
    if (int_of(a) == INT64_MIN) return error("integer overflow in a constant");
    return ok(ConstValue::integer(-int_of(a)));
  }
  if (a.kind == Kind::kFloat) return ok(ConstValue::real(-a.f));
  return not_representable();
}

std::optional<bool> const_truth(const ConstValue& a) {
  switch (a.kind) {
    case Kind::kInt:
      return a.i != 0;
    case Kind::kFloat:
      return a.f != 0.0;
    case Kind::kBool:
      return a.b;
    case Kind::kNone:
      return false;
    case Kind::kSym:
      return a.sym.num != 0;
    case Kind::kTuple:
    case Kind::kList:
      return !a.items.empty();
    case Kind::kString:
      return !a.s.empty();
    case Kind::kEllipsis:
      return true;
  }
  return std::nullopt;
}

}  // namespace vortex::flow
