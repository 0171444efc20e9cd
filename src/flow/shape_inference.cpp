#include "flow/shape_inference.h"

#include <algorithm>
#include <array>
#include <numeric>

#include "flow/slice_range.h"

namespace vortex::flow {

namespace {

std::string dims_pair(const Dim& a, const Dim& b) {
  return dim_to_string(a) + " vs " + dim_to_string(b);
}

// A product of dims: (num / den) * G^g * D^d * P^p * N^n, enough to compare element counts.
struct Monomial {
  int64_t num = 1;
  int64_t den = 1;
  std::array<int, 5> power{};  // indexed by Symbol
  bool overflow = false;

  void normalize() {
    if (den < 0) {
      num = -num;
      den = -den;
    }
    int64_t g = std::gcd(num < 0 ? -num : num, den);
    if (g > 1) {
      num /= g;
      den /= g;
    }
  }
  void multiply(const Dim& d) {
    overflow = overflow || __builtin_mul_overflow(num, d.num, &num) ||
               __builtin_mul_overflow(den, d.den, &den);
    if (overflow) return;
    if (d.symbol != Symbol::kNone) ++power[static_cast<int>(d.symbol)];
    normalize();
  }
  void divide(const Monomial& m) {
    overflow = overflow || m.overflow || __builtin_mul_overflow(num, m.den, &num) ||
               __builtin_mul_overflow(den, m.num, &den);
    if (overflow) return;
    for (int i = 0; i < 5; ++i) power[i] -= m.power[i];
    normalize();
  }
  bool operator==(const Monomial& o) const {
    return num == o.num && den == o.den && power == o.power;
  }
  // The monomial as one Dim, if it is one.
  std::optional<Dim> as_dim() const {
    Symbol sym = Symbol::kNone;
    for (int i = 1; i < 5; ++i) {
      if (power[i] < 0 || power[i] > 1) return std::nullopt;
      if (power[i] == 1) {
        if (sym != Symbol::kNone) return std::nullopt;
        sym = static_cast<Symbol>(i);
      }
    }
    if (sym == Symbol::kNone && den != 1) return std::nullopt;
    return Dim::of(sym, num, den);
  }
};

Monomial product(const Shape& s) {
  Monomial m;
  for (const Dim& d : s) m.multiply(d);
  return m;
}

int64_t odd_part(int64_t x) {
  if (x == 0) return 0;
  while (x % 2 == 0) x /= 2;
  return x;
}

}  // namespace

int count_page_axes(const Shape& s) {
  return static_cast<int>(std::count_if(s.begin(), s.end(), is_page_dim));
}

double min_elements(const Shape& s, const FlowGeometry& geometry) {
  double n = 1;
  for (const Dim& d : s) {
    if (is_page_dim(d)) continue;
    double base = 1;
    if (d.symbol == Symbol::kG && geometry.G > 0) base = static_cast<double>(geometry.G);
    if (d.symbol == Symbol::kD && geometry.D > 0) base = static_cast<double>(geometry.D);
    if (d.symbol == Symbol::kP && geometry.P > 0) base = static_cast<double>(geometry.P);
    n *= base * static_cast<double>(d.num) / static_cast<double>(d.den);
  }
  return n;
}

ShapeResult broadcast_shapes(const Shape& a, const Shape& b) {
  size_t rank = std::max(a.size(), b.size());
  Shape out(rank);
  for (size_t i = 0; i < rank; ++i) {
    bool has_a = i < a.size(), has_b = i < b.size();
    const Dim* da = has_a ? &a[a.size() - 1 - i] : nullptr;
    const Dim* db = has_b ? &b[b.size() - 1 - i] : nullptr;
    Dim& o = out[rank - 1 - i];
    if (!da)
      o = *db;
    else if (!db)
      o = *da;
    else if (*da == *db)
      o = *da;
    else if (da->is_one())
      o = *db;
    else if (db->is_one())
      o = *da;
    else
      return ShapeResult::fail("shapes " + shape_to_string(a) + " and " + shape_to_string(b) +
                               " do not broadcast (" + dims_pair(*da, *db) + ")");
  }
  return ShapeResult{out, ""};
}

std::optional<int> normalize_axis(int64_t axis, int rank) {
  if (axis < -rank || axis >= rank) return std::nullopt;
  return static_cast<int>(axis < 0 ? axis + rank : axis);
}

std::string axis_out_of_range_message(int64_t axis, const Shape& shape) {
  int rank = static_cast<int>(shape.size());
  std::string msg = "axis " + std::to_string(axis) + " is out of range for a tensor of rank " +
                    std::to_string(rank) + " (shape " + shape_to_string(shape) + ")";
  if (rank == 0) return msg + "; a scalar has no axes";
  return msg + "; valid axes are " + std::to_string(-rank) + " .. " + std::to_string(rank - 1);
}

Shape reduce_shape(const Shape& s, const std::vector<int>& axes, bool keepdims) {
  Shape out;
  for (int i = 0; i < static_cast<int>(s.size()); ++i) {
    bool reduced = std::find(axes.begin(), axes.end(), i) != axes.end();
    if (!reduced)
      out.push_back(s[i]);
    else if (keepdims)
      out.push_back(Dim::constant(1));
  }
  return out;
}

ShapeResult fold_shape(const Shape& s, int axis, int64_t group) {
  if (group <= 0)
    return ShapeResult::fail("fold size must be a positive integer, got " + std::to_string(group));
  if (group > (int64_t{1} << 31)) return ShapeResult::fail("fold size is too large");
  Shape out = s;
  const Dim& d = s[axis];
  std::string where = "axis " + std::to_string(axis) + " of size " + dim_to_string(d) + " (shape " +
                      shape_to_string(s) + ")";
  if (d.is_constant()) {
    if (d.num % group != 0)
      return ShapeResult::fail("fold size " + std::to_string(group) + " does not divide " + where);
    out[axis] = Dim::constant(d.num / group);
    return ShapeResult{out, ""};
  }
  if (d.symbol == Symbol::kN)
    return ShapeResult::fail("cannot fold over the page axis N: pages are scored independently");
  int64_t den = 0;
  if (__builtin_mul_overflow(d.den, group, &den) || den > (int64_t{1} << 40))
    return ShapeResult::fail("fold size " + std::to_string(group) + " is too large for " + where);
  if (d.symbol == Symbol::kP && d.num % odd_part(den) != 0)
    return ShapeResult::fail("fold size " + std::to_string(group) + " does not divide " + where +
                             ": P is a power of two");
  out[axis] = Dim::of(d.symbol, d.num, den);
  return ShapeResult{out, ""};
}

ShapeResult matmul_shape(const Shape& a, const Shape& b) {
  if (a.empty() || b.empty())
    return ShapeResult::fail("matmul needs operands of rank 1 or more, got " + shape_to_string(a) +
                             " @ " + shape_to_string(b));
  Shape aa = a, bb = b;
  if (aa.size() == 1) aa.insert(aa.begin(), Dim::constant(1));
  if (bb.size() == 1) bb.push_back(Dim::constant(1));
  const Dim& ka = aa[aa.size() - 1];
  const Dim& kb = bb[bb.size() - 2];
  if (!(ka == kb))
    return ShapeResult::fail("matmul inner dims do not match: " + shape_to_string(a) + " @ " +
                             shape_to_string(b) + " contracts " + dims_pair(ka, kb) +
                             " (the last axis of the left with the second-to-last of the right)");
  Shape batch_a(aa.begin(), aa.end() - 2), batch_b(bb.begin(), bb.end() - 2);
  ShapeResult batch = broadcast_shapes(batch_a, batch_b);
  if (!batch.ok())
    return ShapeResult::fail("matmul batch dims of " + shape_to_string(a) + " @ " +
                             shape_to_string(b) + " do not broadcast");
  Shape out = batch.shape;
  if (a.size() > 1) out.push_back(aa[aa.size() - 2]);
  if (b.size() > 1) out.push_back(bb[bb.size() - 1]);
  return ShapeResult{out, ""};
}

ShapeResult transpose_shape(const Shape& s, const std::vector<int>& perm) {
  if (perm.size() != s.size())
    return ShapeResult::fail("transpose needs " + std::to_string(s.size()) + " axes for shape " +
                             shape_to_string(s) + ", got " + std::to_string(perm.size()));
  std::vector<bool> seen(s.size(), false);
  Shape out;
  for (int p : perm) {
    if (p < 0 || p >= static_cast<int>(s.size()) || seen[p])
      return ShapeResult::fail("transpose axes must be a permutation of 0.." +
                               std::to_string(static_cast<int>(s.size()) - 1));
    seen[p] = true;
    out.push_back(s[p]);
  }
  return ShapeResult{out, ""};
}

ShapeResult reshape_shape(const Shape& from, const Shape& to) {
  int inferred = -1;
  Shape known;
  for (size_t i = 0; i < to.size(); ++i) {
    if (to[i].is_constant() && to[i].num == -1) {
      if (inferred >= 0) return ShapeResult::fail("reshape allows only one -1");
      inferred = static_cast<int>(i);
      continue;
    }
    if (to[i].num <= 0)
      return ShapeResult::fail("reshape dims must be positive, got " + dim_to_string(to[i]));
    known.push_back(to[i]);
  }
  Monomial total = product(from), target = product(known);
  if (total.overflow || target.overflow)
    return ShapeResult::fail("reshape of " + shape_to_string(from) + " is too large");
  Shape out = to;
  if (inferred >= 0) {
    Monomial rest = total;
    rest.divide(target);
    std::optional<Dim> d = rest.as_dim();
    if (!d || d->num <= 0)
      return ShapeResult::fail("cannot infer the -1 of a reshape of " + shape_to_string(from) +
                               " to " + shape_to_string(to));
    out[inferred] = *d;
    return ShapeResult{out, ""};
  }
  if (!(total == target))
    return ShapeResult::fail("cannot reshape " + shape_to_string(from) + " to " +
                             shape_to_string(to) + ": the element counts differ");
  return ShapeResult{out, ""};
}

std::optional<Dim> slice_length(const Dim& size, const SliceSpec& spec, std::string* error) {
  int64_t step = spec.step;
  if (step == 0) {
    *error = "slice step cannot be zero";
    return std::nullopt;
  }
  if (size.is_constant()) {
    SliceSpec range = spec;
    range.index = false;  // (an index is checked by the caller; here only its range counts)
    const int64_t len = slice_range(range, size.num).second;
    if (len == 0) {
      *error = "slice selects nothing from an axis of size " + std::to_string(size.num);
      return std::nullopt;
    }
    return Dim::constant(len);
  }
  // Symbolic size S: bounds are offsets from the front (>= 0) or the back (< 0).
  std::string fixed = "a slice of an axis of symbolic size " + dim_to_string(size) +
                      " needs a fixed length: use bounds that are both from the front (0:4) or "
                      "both from the back (-4:), or the whole axis (:)";
  if (step < 0) {
    if (step == -1 && !spec.start && !spec.stop) return size;
    *error = fixed;
    return std::nullopt;
  }
  bool start_front = !spec.start || *spec.start >= 0;
  bool stop_back = !spec.stop || *spec.stop < 0;
  int64_t a = spec.start.value_or(0), b = spec.stop.value_or(0);
  int64_t len = 0;
  if (start_front && !stop_back) {
    len = b - a;
  } else if (!start_front && stop_back) {
    len = (-a) - (-b);
  } else if (start_front && stop_back && a == 0 && b == 0) {
    int64_t den = 0;
    if (__builtin_mul_overflow(size.den, step, &den) || den > (int64_t{1} << 40)) {
      *error = "slice step " + std::to_string(step) + " is too large";
      return std::nullopt;
    }
    return Dim::of(size.symbol, size.num, den);
  } else {
    *error = fixed;
    return std::nullopt;
  }
  if (len <= 0) {
    *error = "slice selects nothing";
    return std::nullopt;
  }
  return Dim::constant((len + step - 1) / step);
}

}  // namespace vortex::flow
