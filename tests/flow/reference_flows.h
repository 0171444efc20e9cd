// Straight references for the shipped flows (flows/*.py), for tests only: plain loops over
// pages, heads, tokens and dims in double, written from each flow's docstring and NOT from the
// IR or the executor, so that an executor bug cannot hide in a shared helper.
//
// Layout matches the executor's: a page's fields are concatenated in declaration order, each
// row-major; k and v are [P, D]; q is [G, D]; state is per page, in declaration order.
#pragma once

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

namespace vortex::flow::reference {

struct Geometry {
  int G = 0;
  int D = 0;
  int P = 0;
};

struct ReferenceFlow {
  std::string name;  // flows/<name>.py
  int (*field_floats)(const Geometry&);  // floats of all fields of one page
  int state_floats = 0;                  // floats of all states of one page
  // k, v: [P, D] -> the page's fields.
  std::function<std::vector<double>(const float* k, const float* v, const Geometry&)> summarize;
  // q: [G, D]; fields[i]: page i's fields; state[i]: page i's state (read, then updated).
  std::function<std::vector<double>(const float* q, const std::vector<const double*>& fields,
                                    const std::vector<double*>& state, const Geometry&)>
      score;
};

namespace detail {

inline double dot(const float* q, const double* c, int d) {
  double s = 0;
  for (int i = 0; i < d; ++i) s += static_cast<double>(q[i]) * c[i];
  return s;
}

inline std::vector<double> centroid(const float* k, const Geometry& g) {
  std::vector<double> c(static_cast<size_t>(g.D), 0.0);
  for (int t = 0; t < g.P; ++t)
    for (int d = 0; d < g.D; ++d) c[static_cast<size_t>(d)] += k[t * g.D + d];
  for (double& x : c) x /= g.P;
  return c;
}

// logits[page][head] = q_h . centroid_page / sqrt(D), then softmax over pages per head, then
// the best head per page.
inline std::vector<double> softmax_max(const float* q, const std::vector<const double*>& fields,
                                       const Geometry& g) {
  const size_t n = fields.size();
  std::vector<double> best(n, -std::numeric_limits<double>::infinity());
  for (int h = 0; h < g.G; ++h) {
    std::vector<double> logit(n);
    double mx = -std::numeric_limits<double>::infinity();
    for (size_t p = 0; p < n; ++p) {
      logit[p] = dot(q + h * g.D, fields[p], g.D) / std::sqrt(static_cast<double>(g.D));
      mx = std::max(mx, logit[p]);
    }
    double total = 0;
    for (size_t p = 0; p < n; ++p) total += std::exp(logit[p] - mx);
    for (size_t p = 0; p < n; ++p) best[p] = std::max(best[p], std::exp(logit[p] - mx) / total);
  }
  return best;
}

// Quest's bound for one query head against one (kmax, kmin) pair of D entries.
inline double quest_bound(const float* q, const double* kmax, const double* kmin, int d) {
  double s = 0;
  for (int i = 0; i < d; ++i) s += std::max(q[i] * kmax[i], q[i] * kmin[i]);
  return s;
}

}  // namespace detail

inline std::vector<ReferenceFlow> reference_flows() {
  using detail::centroid;
  using detail::dot;
  std::vector<ReferenceFlow> flows;

  flows.push_back({"block_topk", [](const Geometry& g) { return g.D; }, 0,
                   [](const float* k, const float*, const Geometry& g) { return centroid(k, g); },
                   [](const float* q, const std::vector<const double*>& fields,
                      const std::vector<double*>&, const Geometry& g) {
                     std::vector<double> s(fields.size());
                     for (size_t p = 0; p < fields.size(); ++p) {
                       double total = 0;
                       for (int h = 0; h < g.G; ++h) total += dot(q + h * g.D, fields[p], g.D);
                       s[p] = total / g.G;
                     }
                     return s;
                   }});

  flows.push_back(
      {"quest", [](const Geometry& g) { return 2 * g.D; }, 0,
       [](const float* k, const float*, const Geometry& g) {
         std::vector<double> f(static_cast<size_t>(2 * g.D));  // kmax then kmin
         for (int d = 0; d < g.D; ++d) {
           double mx = k[d], mn = k[d];
           for (int t = 1; t < g.P; ++t) {
             mx = std::max(mx, static_cast<double>(k[t * g.D + d]));
             mn = std::min(mn, static_cast<double>(k[t * g.D + d]));
           }
           f[static_cast<size_t>(d)] = mx;
           f[static_cast<size_t>(g.D + d)] = mn;
         }
         return f;
       },
       [](const float* q, const std::vector<const double*>& fields, const std::vector<double*>&,
          const Geometry& g) {
         std::vector<double> s(fields.size());
         for (size_t p = 0; p < fields.size(); ++p) {
           double best = -std::numeric_limits<double>::infinity();
           for (int h = 0; h < g.G; ++h)
             best = std::max(best, detail::quest_bound(q + h * g.D, fields[p], fields[p] + g.D,
                                                       g.D));
           s[p] = best;
         }
         return s;
       }});

  flows.push_back({"gqa_softmax_max", [](const Geometry& g) { return g.D; }, 0,
                   [](const float* k, const float*, const Geometry& g) { return centroid(k, g); },
                   [](const float* q, const std::vector<const double*>& fields,
                      const std::vector<double*>&, const Geometry& g) {
                     return detail::softmax_max(q, fields, g);
                   }});

  flows.push_back(
      {"subpage_quest", [](const Geometry& g) { return 2 * (g.P / 4) * g.D; }, 0,
       [](const float* k, const float*, const Geometry& g) {
         const int groups = g.P / 4;
         // kmax [P/4, D] then kmin [P/4, D]
         std::vector<double> f(static_cast<size_t>(2 * groups * g.D));
         for (int grp = 0; grp < groups; ++grp)
           for (int d = 0; d < g.D; ++d) {
             double mx = -std::numeric_limits<double>::infinity();
             double mn = std::numeric_limits<double>::infinity();
             for (int t = 4 * grp; t < 4 * grp + 4; ++t) {
               mx = std::max(mx, static_cast<double>(k[t * g.D + d]));
               mn = std::min(mn, static_cast<double>(k[t * g.D + d]));
             }
             f[static_cast<size_t>(grp * g.D + d)] = mx;
             f[static_cast<size_t>((groups + grp) * g.D + d)] = mn;
           }
         return f;
       },
       [](const float* q, const std::vector<const double*>& fields, const std::vector<double*>&,
          const Geometry& g) {
         const int groups = g.P / 4;
         std::vector<double> s(fields.size());
         for (size_t p = 0; p < fields.size(); ++p) {
           double best = -std::numeric_limits<double>::infinity();
           for (int h = 0; h < g.G; ++h)
             for (int grp = 0; grp < groups; ++grp)
               best = std::max(best, detail::quest_bound(q + h * g.D, fields[p] + grp * g.D,
                                                         fields[p] + (groups + grp) * g.D, g.D));
           s[p] = best;
         }
         return s;
       }});

  flows.push_back({"streaming", [](const Geometry&) { return 0; }, 0,
                   [](const float*, const float*, const Geometry&) {
                     return std::vector<double>{};
                   },
                   [](const float*, const std::vector<const double*>& fields,
                      const std::vector<double*>&,
                      const Geometry&) { return std::vector<double>(fields.size(), 0.0); }});

  flows.push_back({"h2o", [](const Geometry& g) { return g.D; }, 1,
                   [](const float* k, const float*, const Geometry& g) { return centroid(k, g); },
                   [](const float* q, const std::vector<const double*>& fields,
                      const std::vector<double*>& state, const Geometry& g) {
                     std::vector<double> attention = detail::softmax_max(q, fields, g);
                     std::vector<double> s(fields.size());
                     for (size_t p = 0; p < fields.size(); ++p) {
                       *state[p] = 0.9 * *state[p] + attention[p];
                       s[p] = *state[p];
                     }
                     return s;
                   }});

  flows.push_back({"value_gated", [](const Geometry& g) { return g.D + 1; }, 0,
                   [](const float* k, const float* v, const Geometry& g) {
                     std::vector<double> f = centroid(k, g);  // centroid [1, D] then vnorm []
                     double norms = 0;
                     for (int t = 0; t < g.P; ++t) {
                       double sq = 0;
                       for (int d = 0; d < g.D; ++d)
                         sq += static_cast<double>(v[t * g.D + d]) * v[t * g.D + d];
                       norms += std::sqrt(sq);
                     }
                     f.push_back(norms / g.P);
                     return f;
                   },
                   [](const float* q, const std::vector<const double*>& fields,
                      const std::vector<double*>&, const Geometry& g) {
                     std::vector<double> s(fields.size());
                     for (size_t p = 0; p < fields.size(); ++p) {
                       double total = 0;
                       for (int h = 0; h < g.G; ++h) total += dot(q + h * g.D, fields[p], g.D);
                       s[p] = total / g.G * fields[p][g.D];
                     }
                     return s;
                   }});
  return flows;
}

}  // namespace vortex::flow::reference

namespace vortex::flow::reference {

// The spec's planning and selection, written out directly: which pages a row of n pages reads
// given its scores (one per scoreable page, in page order).
struct Budget {
  long pages = -1;     // < 0: unset
  double ratio = 0.0;  // 0: unset (1/16 when pages is unset too)
  long floor = 0;
  long cap = -1;       // < 0: unset
  long sink = 1;
  long recent = 2;
};

struct Plan {
  bool read_all = false;
  std::vector<int> reserved;
  std::vector<int> scoreable;
  long k = 0;
};

inline Plan plan(const Budget& b, int n) {
  long budget;
  if (b.pages >= 0) {
    budget = b.pages;
  } else {
    double ratio = b.ratio > 0 ? b.ratio : 1.0 / 16.0;
    double x = ratio * n;
    budget = static_cast<long>(std::ceil(x - 1e-9 * std::max(1.0, x)));
  }
  budget = std::max(budget, b.floor);
  if (b.cap >= 0) budget = std::min(budget, b.cap);
  Plan p;
  for (int page = 0; page < n; ++page) {
    bool is_sink = page < b.sink;
    bool is_recent = page >= n - b.recent || page == n - 1;
    (is_sink || is_recent ? p.reserved : p.scoreable).push_back(page);
  }
  p.read_all = n <= std::max<long>(budget, static_cast<long>(p.reserved.size()));
  if (p.read_all) p.scoreable.clear();
  p.k = p.read_all ? 0 : std::max(0L, budget - static_cast<long>(p.reserved.size()));
  return p;
}

inline std::vector<int> select(const Plan& p, int n, const std::vector<double>& scores) {
  std::vector<int> selected;
  if (p.read_all) {
    for (int page = 0; page < n; ++page) selected.push_back(page);
    return selected;
  }
  std::vector<size_t> order(p.scoreable.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    bool nan_a = std::isnan(scores[a]), nan_b = std::isnan(scores[b]);
    if (nan_a || nan_b) return !nan_a && nan_b;
    return scores[a] > scores[b];
  });
  selected = p.reserved;
  for (long i = 0; i < p.k; ++i) selected.push_back(p.scoreable[order[static_cast<size_t>(i)]]);
  std::sort(selected.begin(), selected.end());
  return selected;
}

}  // namespace vortex::flow::reference
