#include "agent/explore.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <unordered_set>

#include "agent/leaderboard.h"
#include "agent/results_store.h"
#include "core/error.h"
#include "flow/compiler.h"
#include "flow/source_file.h"
#include "model/model_config.h"
#include "model/presets.h"

namespace vortex::agent {

namespace {

namespace fs = std::filesystem;

// ---- source text helpers ------------------------------------------------------------------

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (true) {
    const size_t nl = text.find('\n', start);
    if (nl == std::string::npos) {
      lines.push_back(text.substr(start));
      return lines;
    }
    lines.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
}

std::string join_lines(const std::vector<std::string>& lines) {
  std::string out;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i) out += '\n';
    out += lines[i];
  }
  return out;
}

size_t indent_of(const std::string& line) {
  size_t i = 0;
  while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
  return i;
}

bool blank(const std::string& line) {
  const size_t i = indent_of(line);
  return i == line.size() || line[i] == '#';
}

// The code part of a line: up to a '#' outside a string literal.
std::string code_part(const std::string& line) {
  char quote = 0;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quote) {
      if (c == '\\') {
        ++i;
      } else if (c == quote) {
        quote = 0;
      }
    } else if (c == '"' || c == '\'') {
      quote = c;
    } else if (c == '#') {
      return line.substr(0, i);
    }
  }
  return line;
}

// The index of the ')' closing the '(' at `open` in `text`, or npos.
size_t closing_paren(const std::string& text, size_t open) {
  int depth = 0;
  char quote = 0;
  for (size_t i = open; i < text.size(); ++i) {
    const char c = text[i];
    if (quote) {
      if (c == '\\') {
        ++i;
      } else if (c == quote) {
        quote = 0;
      }
    } else if (c == '"' || c == '\'') {
      quote = c;
    } else if (c == '(') {
      ++depth;
    } else if (c == ')') {
      if (--depth == 0) return i;
    }
  }
  return std::string::npos;
}

size_t count_occurrences(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

std::string format_number(double v) {
  char buf[32];
  for (int precision = 6; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

// "1/16" when the ratio is one over an integer, else the shortest decimal that reads back.
std::string ratio_text(double r) {
  const double inv = 1.0 / r;
  const double k = std::round(inv);
  if (k >= 1 && std::abs(inv - k) < 1e-9) return str_cat("1/", static_cast<int64_t>(k));
  return format_number(r);
}

std::string layers_text(const std::vector<int64_t>& layers) {
  std::string out = "[";
  for (size_t i = 0; i < layers.size(); ++i) out += (i ? ", " : "") + std::to_string(layers[i]);
  return out + "]";
}

// splitmix64: the generator's only source of randomness (portable, unlike std::shuffle's
// distribution, so a seed gives the same order with every standard library).
uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

template <class T>
void seeded_shuffle(std::vector<T>& v, uint64_t seed) {
  uint64_t state = seed;
  for (size_t i = v.size(); i > 1; --i) {
    const size_t j = static_cast<size_t>(splitmix64(state) % i);
    std::swap(v[i - 1], v[j]);
  }
}

// ---- the mutation dimensions of a base ----------------------------------------------------

enum class DimKind { kRatio, kSink, kRecent, kDense, kDtype, kReduction, kConstant };

bool is_budget_dim(DimKind k) {
  return k == DimKind::kRatio || k == DimKind::kSink || k == DimKind::kRecent ||
         k == DimKind::kDense;
}

struct LineEdit {
  size_t line;
  std::string text;
};

struct Option {
  std::string tag;              // "" for option 0 (the base's)
  std::string description;      // "" for option 0
  std::string value;            // budget dims: the keyword's value text ("1/32", "0", "[0, 1]")
  std::vector<LineEdit> edits;  // template dims: whole-line replacements
};

struct Dimension {
  DimKind kind;
  std::vector<Option> options;  // [0] is the base's
};

// Where a base's budget is written (or would be inserted) and what it holds.
struct BudgetSite {
  bool present = false;
  size_t first = 0, last = 0;  // the budget statement's lines (present)
  std::string indent;          // the class body's indentation
  std::string trailing;        // what follows the Budget(...) call on its last line
  size_t insert_at = 0;        // where to insert one (not present): before the first def
  std::string pages_or_ratio;  // the base's "pages=K" or "ratio=1/16"
  std::string extra;           // the base's floor/cap keywords, kept as they are
};

struct Analysis {
  std::vector<std::string> lines;  // the base's source (BOM removed)
  std::vector<Dimension> dims;
  BudgetSite budget;
  std::optional<LineEdit> import_edit;  // adds Budget to the import when it is missing
};

const std::regex& budget_re() {
  static const std::regex re(R"(^(\s+)budget\s*=\s*Budget\s*\()");
  return re;
}

BudgetSite find_budget(const std::vector<std::string>& lines, const flow::BudgetPolicy& b) {
  BudgetSite site;
  site.pages_or_ratio =
      b.pages ? str_cat("pages=", *b.pages) : str_cat("ratio=", ratio_text(b.effective_ratio()));
  if (b.floor != 0) site.extra += str_cat(", floor=", b.floor);
  if (b.cap) site.extra += str_cat(", cap=", *b.cap);
  std::smatch m;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (!std::regex_search(lines[i], m, budget_re())) continue;
    // The call may span lines: find its closing parenthesis.
    std::string joined;
    std::vector<size_t> starts;
    for (size_t j = i; j < lines.size(); ++j) {
      starts.push_back(joined.size());
      joined += code_part(lines[j]) + "\n";
      const size_t close = closing_paren(joined, static_cast<size_t>(m.length(0)) - 1);
      if (close == std::string::npos) continue;
      site.present = true;
      site.first = i;
      site.last = j;
      site.indent = m[1].str();
      site.trailing = lines[j].substr(close - starts.back() + 1);
      return site;
    }
    break;
  }
  // None (or unbalanced): insert one after the class's declarations, before its first method.
  static const std::regex def_re(R"(^(\s+)def\s)");
  for (size_t i = 0; i < lines.size(); ++i) {
    if (std::regex_search(lines[i], m, def_re)) {
      site.insert_at = i;
      while (site.insert_at > 0 && blank(lines[site.insert_at - 1])) --site.insert_at;
      site.indent = m[1].str();
      return site;
    }
  }
  site.insert_at = lines.size();
  site.indent = "    ";
  return site;
}

void add_budget_dims(Analysis& a, const flow::BudgetPolicy& b) {
  {
    Dimension d{DimKind::kRatio, {}};
    d.options.push_back({"", "", a.budget.pages_or_ratio, {}});
    for (int k : {4, 8, 16, 32}) {
      const double r = 1.0 / k;
      if (!b.pages && std::abs(b.effective_ratio() - r) < 1e-12) continue;
      d.options.push_back(
          {str_cat("r", k),
           str_cat("ratio 1/", k, " (was ",
                   b.pages ? str_cat("pages=", *b.pages) : ratio_text(b.effective_ratio()), ")"),
           str_cat("ratio=1/", k),
           {}});
    }
    a.dims.push_back(std::move(d));
  }
  auto int_dim = [&](DimKind kind, const char* tag, const char* what, int64_t base,
                     std::initializer_list<int64_t> values) {
    Dimension d{kind, {}};
    d.options.push_back({"", "", std::to_string(base), {}});
    for (int64_t v : values) {
      if (v == base) continue;
      d.options.push_back(
          {str_cat(tag, v), str_cat(what, " ", v, " (was ", base, ")"), std::to_string(v), {}});
    }
    a.dims.push_back(std::move(d));
  };
  int_dim(DimKind::kSink, "s", "sink pages", b.sink, {0, 1, 2});
  int_dim(DimKind::kRecent, "w", "recent pages", b.recent, {1, 2, 4});
  {
    Dimension d{DimKind::kDense, {}};
    d.options.push_back({"", "", layers_text(b.dense_layers), {}});
    const std::pair<std::vector<int64_t>, const char*> choices[] = {
        {{0}, "d0"}, {{}, "dn"}, {{0, 1}, "d01"}};
    for (const auto& [layers, tag] : choices) {
      if (layers == b.dense_layers) continue;
      d.options.push_back({tag,
                           str_cat("dense layers ", layers_text(layers), " (was ",
                                   layers_text(b.dense_layers), ")"),
                           layers_text(layers),
                           {}});
    }
    a.dims.push_back(std::move(d));
  }
}

// Every shaped Field in int8, or all back in bf16 when they already are.
void add_dtype_dim(Analysis& a) {
  static const std::regex field_re(R"(^\s+\w+\s*=\s*Field\s*\()");
  static const std::regex int8_re(R"(dtype\s*=\s*["']int8["'])");
  static const std::regex bf16_re(R"(dtype\s*=\s*["']bf16["'])");
  static const std::regex drop_int8_re(R"(\s*,\s*dtype\s*=\s*["']int8["'])");
  static const std::regex only_dtype_re(R"(^\s*dtype\s*=)");
  struct Shaped {
    size_t line;
    size_t open, close;  // the Field call's parentheses
    bool int8;
  };
  std::vector<Shaped> shaped;
  std::smatch m;
  for (size_t i = 0; i < a.lines.size(); ++i) {
    const std::string code = code_part(a.lines[i]);
    if (!std::regex_search(code, m, field_re)) continue;
    const size_t open = static_cast<size_t>(m.length(0)) - 1;
    const size_t close = closing_paren(code, open);
    if (close == std::string::npos) continue;
    const std::string args = code.substr(open + 1, close - open - 1);
    if (args.find_first_not_of(" \t") == std::string::npos ||
        std::regex_search(args, only_dtype_re))
      continue;  // a scalar Field: int8 would cost more than bf16 (a 4-byte scale per value)
    shaped.push_back({i, open, close, std::regex_search(args, int8_re)});
  }
  if (shaped.empty()) return;
  const bool all_int8 =
      std::all_of(shaped.begin(), shaped.end(), [](const Shaped& s) { return s.int8; });
  Option o;
  if (all_int8) {
    o.tag = "bf16";
    o.description = "Fields in bf16 (was int8)";
    for (const Shaped& s : shaped) {
      const std::string& line = a.lines[s.line];
      const std::string args = line.substr(s.open, s.close - s.open + 1);
      o.edits.push_back({s.line, line.substr(0, s.open) +
                                     std::regex_replace(args, drop_int8_re, "") +
                                     line.substr(s.close + 1)});
    }
  } else {
    o.tag = "i8";
    const bool any_int8 =
        std::any_of(shaped.begin(), shaped.end(), [](const Shaped& s) { return s.int8; });
    o.description = any_int8 ? "every Field in int8 (was mixed)" : "Fields in int8 (was bf16)";
    for (const Shaped& s : shaped) {
      if (s.int8) continue;
      const std::string& line = a.lines[s.line];
      std::string args = line.substr(s.open, s.close - s.open + 1);
      if (std::regex_search(args, bf16_re)) {
        args = std::regex_replace(args, bf16_re, "dtype=\"int8\"");
      } else {
        args.insert(args.size() - 1, ", dtype=\"int8\"");
      }
      o.edits.push_back({s.line, line.substr(0, s.open) + args + line.substr(s.close + 1)});
    }
  }
  a.dims.push_back({DimKind::kDtype, {Option{}, std::move(o)}});
}

// The reduction over the GQA group's heads in score, where score makes it in one place.
void add_reduction_dim(Analysis& a) {
  static const std::regex score_re(R"(^(\s*)def\s+score\s*\()");
  std::smatch m;
  size_t begin = a.lines.size(), def_indent = 0;
  for (size_t i = 0; i < a.lines.size(); ++i) {
    if (std::regex_search(a.lines[i], m, score_re)) {
      begin = i + 1;
      def_indent = m[1].length();
      break;
    }
  }
  size_t end = begin;
  while (end < a.lines.size() && (blank(a.lines[end]) || indent_of(a.lines[end]) > def_indent))
    ++end;
  struct Rule {
    const char* from;
    const char* to;
    const char* tag;
    const char* description;
  };
  const Rule rules[] = {
      {".max(axis=-1)", ".mean(axis=-1)", "hmean", "mean over heads (was max)"},
      {".mean(axis=-1)", ".max(axis=-1)", "hmax", "max over heads (was mean)"},
      {".max(axis=(1, 2))", ".max(axis=2).mean(axis=1)", "hmean",
       "best group, mean over heads (was max over both)"},
  };
  auto count = [&](const char* what) {
    size_t n = 0;
    for (size_t i = begin; i < end; ++i) n += count_occurrences(code_part(a.lines[i]), what);
    return n;
  };
  const size_t head_reductions = count(rules[0].from) + count(rules[1].from);
  for (const Rule& r : rules) {
    const bool applies = (&r == &rules[2]) ? count(r.from) == 1 && head_reductions == 0
                                           : count(r.from) == 1 && head_reductions == 1;
    if (!applies) continue;
    for (size_t i = begin; i < end; ++i) {
      const std::string code = code_part(a.lines[i]);
      const size_t at = code.find(r.from);
      if (at == std::string::npos) continue;
      std::string line = a.lines[i];
      line.replace(at, std::strlen(r.from), r.to);
      Option o{r.tag, r.description, "", {{i, line}}};
      a.dims.push_back({DimKind::kReduction, {Option{}, std::move(o)}});
      return;
    }
  }
}

// Module constants whose meaning is known.
void add_constant_dims(Analysis& a) {
  struct Known {
    const char* name;
    const char* tag;
    const char* what;
    std::vector<const char*> values;
  };
  const Known known[] = {
      {"GROUP", "g", "GROUP (tokens per sub-page)", {"2", "4", "8"}},
      {"DECAY", "dk", "DECAY (per-step decay)", {"0.5", "0.9", "0.99"}},
  };
  for (const Known& k : known) {
    const std::regex re(str_cat("^", k.name, R"(\s*=\s*([0-9][0-9.]*)\s*(#.*)?$)"));
    std::smatch m;
    for (size_t i = 0; i < a.lines.size(); ++i) {
      if (!std::regex_match(a.lines[i], m, re)) continue;
      const std::string base = m[1].str();
      const double base_value = std::strtod(base.c_str(), nullptr);
      Dimension d{DimKind::kConstant, {Option{}}};
      for (const char* v : k.values) {
        if (std::strtod(v, nullptr) == base_value) continue;
        std::string tag = str_cat(k.tag, v);
        std::replace(tag.begin(), tag.end(), '.', 'p');
        std::string line = a.lines[i];
        line.replace(static_cast<size_t>(m.position(1)), base.size(), v);
        d.options.push_back({tag, str_cat(k.what, " ", v, " (was ", base, ")"), "", {{i, line}}});
      }
      if (d.options.size() > 1) a.dims.push_back(std::move(d));
      break;
    }
  }
}

Analysis analyze(const BaseFlow& base) {
  Analysis a;
  std::string text = base.source;
  if (text.rfind("\xEF\xBB\xBF", 0) == 0) text.erase(0, 3);  // a BOM may only come first
  a.lines = split_lines(text);
  a.budget = find_budget(a.lines, base.budget);
  if (!a.budget.present) {
    static const std::regex import_re(R"(^(\s*from\s+vortex\.flow\s+import\s+\(?\s*))");
    static const std::regex has_budget_re(R"(\bBudget\b)");
    std::smatch m;
    for (size_t i = 0; i < a.lines.size(); ++i) {
      if (!std::regex_search(a.lines[i], m, import_re)) continue;
      if (!std::regex_search(a.lines[i], has_budget_re))
        a.import_edit = LineEdit{i, m[1].str() + "Budget, " + a.lines[i].substr(m.length(0))};
      break;
    }
  }
  add_budget_dims(a, base.budget);
  add_dtype_dim(a);
  add_reduction_dim(a);
  add_constant_dims(a);
  return a;
}

Candidate materialize(const BaseFlow& base, const Analysis& a, const std::vector<uint8_t>& choice) {
  Candidate c;
  c.base = base.name;
  c.base_path = base.path;
  std::vector<std::string> lines = a.lines;
  std::vector<std::string> tags, descriptions;
  bool budget_changed = false;
  for (size_t d = 0; d < a.dims.size(); ++d) {
    if (choice[d] == 0) continue;
    const Option& o = a.dims[d].options[choice[d]];
    ++c.mutations;
    tags.push_back(o.tag);
    descriptions.push_back(o.description);
    if (is_budget_dim(a.dims[d].kind)) budget_changed = true;
    for (const LineEdit& e : o.edits) lines[e.line] = e.text;
  }
  if (c.mutations == 0) {
    c.name = base.name;
    c.source = base.source;
    return c;
  }
  if (budget_changed) {
    std::string values[4];  // ratio, sink, recent, dense
    for (size_t d = 0; d < a.dims.size(); ++d) {
      const DimKind k = a.dims[d].kind;
      if (!is_budget_dim(k)) continue;
      values[static_cast<int>(k)] = a.dims[d].options[choice[d]].value;
    }
    const std::string call =
        str_cat("budget = Budget(", values[0], a.budget.extra, ", sink=", values[1],
                ", recent=", values[2], ", dense_layers=", values[3], ")");
    const BudgetSite& b = a.budget;
    if (b.present) {
      lines[b.first] = b.indent + call + b.trailing;
      lines.erase(lines.begin() + static_cast<std::ptrdiff_t>(b.first) + 1,
                  lines.begin() + static_cast<std::ptrdiff_t>(b.last) + 1);
    } else {
      lines.insert(lines.begin() + static_cast<std::ptrdiff_t>(b.insert_at), b.indent + call);
      if (a.import_edit) lines[a.import_edit->line] = a.import_edit->text;
    }
  }
  c.tag.clear();
  for (const std::string& t : tags) c.tag += (c.tag.empty() ? "" : "_") + t;
  for (const std::string& d : descriptions)
    c.description += (c.description.empty() ? "" : ", ") + d;
  c.name = base.name + "__" + c.tag;
  c.source = str_cat("# vortex explore: ", printable(base.path, 200), " with ", c.description, "\n",
                     join_lines(lines));
  return c;
}

bool compiles_for(const Candidate& c, const std::vector<CompileTarget>& targets) {
  for (const CompileTarget& t : targets) {
    flow::CompileOptions co;
    co.dump_ir = false;
    co.num_layers = t.num_layers;
    if (!flow::compile_flow(c.source, c.name + ".py", &t.geometry, co).ok()) return false;
  }
  return true;
}

}  // namespace

// ---- bases --------------------------------------------------------------------------------

BaseFlow read_base_flow(const std::string& path) {
  BaseFlow b;
  b.path = path;
  b.name = fs::path(path).stem().string();
  b.source = flow::read_flow_source_file(path);
  flow::CompileOptions co;
  co.dump_ir = false;
  const flow::CompileResult r = flow::compile_flow(b.source, path, nullptr, co);
  if (!r.ok()) {
    const std::string all = flow::format_compile_errors(r, b.source, path, false);
    fail(all.substr(0, all.find('\n')), " (explore mutates flows that compile)");
  }
  b.budget = r.program->budget;
  b.fields = r.program->fields.size();
  return b;
}

std::vector<BaseFlow> read_base_flows(const std::vector<std::string>& paths) {
  if (paths.empty()) fail_usage("--flows: no flow to explore");
  std::vector<BaseFlow> bases;
  std::set<std::string> names;
  for (const std::string& path : paths) {
    BaseFlow b = read_base_flow(path);
    if (!is_page_scoring_flow(b))
      fail_usage("--flows: ", path,
                 " does not score pages (no Field or State, or a budget of pages=0): explore "
                 "has nothing to mutate in it");
    if (!names.insert(b.name).second)
      fail_usage("--flows: two flows are named '", b.name, "' (", path,
                 "): candidates are named after their base");
    bases.push_back(std::move(b));
  }
  return bases;
}

bool is_page_scoring_flow(const BaseFlow& flow) {
  return flow.fields > 0 && !(flow.budget.pages && *flow.budget.pages == 0);
}

// ---- the generator ------------------------------------------------------------------------

struct CandidateGenerator::Impl {
  std::vector<BaseFlow> bases;
  std::vector<Analysis> analyses;
  std::vector<CompileTarget> targets;
  // The order: (base, choice vector); the bases (all zeros) first.
  std::vector<std::pair<size_t, std::vector<uint8_t>>> order;
  size_t next = 0;
  size_t dropped = 0;
  std::unordered_set<std::string> produced;
};

CandidateGenerator::CandidateGenerator(std::vector<BaseFlow> bases, uint64_t seed,
                                       std::vector<CompileTarget> targets)
    : impl_(std::make_unique<Impl>()) {
  Impl& g = *impl_;
  g.bases = std::move(bases);
  g.targets = std::move(targets);
  // levels[level][base] = the base's choice vectors with `level` mutated dimensions.
  std::vector<std::vector<std::vector<std::vector<uint8_t>>>> levels;
  for (size_t b = 0; b < g.bases.size(); ++b) {
    g.analyses.push_back(analyze(g.bases[b]));
    const std::vector<Dimension>& dims = g.analyses.back().dims;
    std::vector<uint8_t> choice(dims.size(), 0);
    while (true) {
      const size_t level = static_cast<size_t>(
          std::count_if(choice.begin(), choice.end(), [](uint8_t c) { return c != 0; }));
      if (levels.size() <= level) levels.resize(level + 1);
      levels[level].resize(g.bases.size());
      levels[level][b].push_back(choice);
      // The next combination (mixed radix, the last dimension fastest); done after the last.
      bool carry = true;
      for (size_t d = dims.size(); carry && d > 0;) {
        --d;
        carry = ++choice[d] >= dims[d].options.size();
        if (carry) choice[d] = 0;
      }
      if (carry) break;
    }
  }
  for (size_t level = 0; level < levels.size(); ++level) {
    std::vector<std::vector<std::vector<uint8_t>>>& per_base = levels[level];
    per_base.resize(g.bases.size());
    size_t longest = 0;
    for (size_t b = 0; b < per_base.size(); ++b) {
      uint64_t mix =
          seed ^ (0x632BE59BD9B4E019ull * (level + 1)) ^ (0x9E3779B97F4A7C15ull * (b + 1));
      seeded_shuffle(per_base[b], splitmix64(mix));
      longest = std::max(longest, per_base[b].size());
    }
    for (size_t i = 0; i < longest; ++i)
      for (size_t b = 0; b < per_base.size(); ++b)
        if (i < per_base[b].size()) g.order.emplace_back(b, per_base[b][i]);
  }
}

CandidateGenerator::~CandidateGenerator() = default;
CandidateGenerator::CandidateGenerator(CandidateGenerator&&) noexcept = default;
CandidateGenerator& CandidateGenerator::operator=(CandidateGenerator&&) noexcept = default;

std::optional<Candidate> CandidateGenerator::next() {
  Impl& g = *impl_;
  while (g.next < g.order.size()) {
    const auto& [b, choice] = g.order[g.next++];
    Candidate c = materialize(g.bases[b], g.analyses[b], choice);
    if (g.produced.count(c.source)) continue;
    if (!c.is_base() && !g.targets.empty() && !compiles_for(c, g.targets)) {
      ++g.dropped;
      continue;
    }
    g.produced.insert(c.source);
    return c;
  }
  return std::nullopt;
}

size_t CandidateGenerator::dropped_uncompilable() const {
  return impl_->dropped;
}

size_t CandidateGenerator::total() const {
  return impl_->order.size();
}

std::vector<Candidate> generate_candidates(const std::vector<BaseFlow>& bases, uint64_t seed,
                                           size_t max_count,
                                           const std::vector<CompileTarget>& targets) {
  CandidateGenerator gen(bases, seed, targets);
  std::vector<Candidate> out;
  while (out.size() < max_count) {
    std::optional<Candidate> c = gen.next();
    if (!c) break;
    out.push_back(std::move(*c));
  }
  return out;
}

// ---- options ------------------------------------------------------------------------------

SubmitOptions explore_quick_options(SubmitOptions o) {
  o = quick_options(o);
  o.context = std::min(o.context, kExploreQuickContext);
  return o;
}

bool same_evaluation(const Json& a, const Json& b) {
  if (!a.is_object() || !b.is_object()) return false;
  Json x = a, y = b;
  x.erase("budget");
  y.erase("budget");
  return x == y;
}

// ---- the search ---------------------------------------------------------------------------

namespace {

// The parameters run_submission records for `o`: it fills them before any stage, and a
// directory fails verify at once (read_flow_source_file refuses it before opening it), so this
// asks the pipeline itself rather than keeping a copy of its keys here.
Json evaluation_parameters(const SubmitOptions& o, const std::string& some_directory) {
  Json p = run_submission(some_directory, o, nullptr).parameters;
  p.erase("budget");
  return p;
}

// `a` beats `b`: at least as accurate and as fast, and more accurate or kMinSpeedupGain faster
// (a speed-up a hair higher, from a few bytes of fields fewer, is not a win).
bool beats(const Submission& a, const Submission& b) {
  constexpr double kEps = 1e-9;
  return a.accuracy >= b.accuracy - kEps && a.speedup >= b.speedup &&
         (a.accuracy > b.accuracy + kEps || a.speedup >= b.speedup * (1 + kMinSpeedupGain));
}

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) fail(path.string(), ": cannot write the candidate: ", std::strerror(errno));
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  out.close();
  if (!out) fail(path.string(), ": cannot write the candidate: ", std::strerror(errno));
}

std::string figure(const char* format, double v) {
  if (!std::isfinite(v)) return "-";
  char buf[48];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

std::string speedup_text(const Submission& s) {
  if (!std::isfinite(s.speedup)) return "-";
  return figure(s.speedup_estimated ? "~%.2fx" : "%.2fx", s.speedup);
}

std::string point_text(const Submission& s) {
  return str_cat(printable(s.name, 60), " (#", s.id, ": ", figure("%.3f", s.accuracy), " at ",
                 speedup_text(s), ")");
}

}  // namespace

ExploreResult run_explore(const ExploreOptions& options, ResultsStore& store,
                          const ExploreCallbacks& cb) {
  const SubmitOptions& o = options.submit;
  if (options.max_submissions < 1)
    fail_usage("--max-submissions must be at least 1, got ", options.max_submissions);
  const std::vector<BaseFlow> bases = read_base_flows(options.flows);
  std::error_code ec;
  fs::create_directories(options.out_dir, ec);
  if (ec || !fs::is_directory(options.out_dir))
    fail(options.out_dir, ": cannot create the candidates' directory",
         ec ? ": " + ec.message() : std::string(": not a directory"));

  // Every mutation must compile for the evaluation model and for the throughput workload.
  const ModelConfig eval_config = load_model_config(o.model);
  // The workload's model as the pipeline reads it: a preset, or a model directory.
  std::optional<ModelConfig> workload = preset_config(o.workload_model);
  if (!workload && fs::is_directory(o.workload_model, ec))
    workload = load_model_config(o.workload_model);
  if (!workload)
    fail_usage("--workload-model '", o.workload_model,
               "' is neither a preset (e.g. qwen3-1.7b) nor a model directory");
  std::vector<CompileTarget> targets;
  for (const ModelConfig* m : {&eval_config, static_cast<const ModelConfig*>(&*workload)})
    targets.push_back({{m->group_size(), m->head_dim, o.page_size}, m->num_layers});

  ExploreResult result;
  result.parameters = evaluation_parameters(o, options.out_dir);

  std::vector<std::string> shipped_sources;
  for (const BaseFlow& b : bases) shipped_sources.push_back(b.source);
  for (const std::string& path : options.shipped_flows)
    shipped_sources.push_back(flow::read_flow_source_file(path));

  CandidateGenerator gen(bases, options.seed, targets);
  const int total = options.max_submissions;
  while (static_cast<int>(result.submitted_ids.size()) < total) {
    std::optional<Candidate> c = gen.next();
    if (!c) {
      result.exhausted = true;
      break;
    }
    const Submission* earlier = nullptr;
    const std::vector<Submission> same_source = store.with_source(c->source);
    for (const Submission& e : same_source) {
      if (same_evaluation(e.parameters, result.parameters)) {
        earlier = &e;
        break;
      }
    }
    if (earlier) {
      result.skipped_ids.push_back(earlier->id);
      if (cb.skipped) cb.skipped(*c, *earlier);
      continue;
    }
    std::string path = c->base_path;
    if (!c->is_base()) {
      const fs::path file = fs::path(options.out_dir) / (c->name + ".py");
      write_text(file, c->source);
      path = file.string();
    }
    const int index = static_cast<int>(result.submitted_ids.size()) + 1;
    if (cb.started) cb.started(index, total, *c);
    Submission s = run_submission(path, o, &store, cb.stage);
    store.add(s);
    result.submitted_ids.push_back(s.id);
    if (cb.finished) cb.finished(index, total, *c, s);
    result.submitted.push_back(std::move(*c));
  }
  result.dropped_uncompilable = gen.dropped_uncompilable();

  rank_explored(result, store.all(), shipped_sources);
  return result;
}

void rank_explored(ExploreResult& result, std::vector<Submission> stored,
                   const std::vector<std::string>& shipped_sources) {
  const std::set<int64_t> mine(result.submitted_ids.begin(), result.submitted_ids.end());
  const std::unordered_set<std::string> shipped(shipped_sources.begin(), shipped_sources.end());
  result.comparable.clear();
  result.from_this_run.clear();
  result.shipped.clear();
  result.shipped_frontier.clear();
  result.beats.clear();
  for (Submission& s : stored) {
    if (!same_evaluation(s.parameters, result.parameters)) continue;
    result.from_this_run.push_back(mine.count(s.id) > 0);
    result.shipped.push_back(shipped.count(s.source) > 0);
    result.comparable.push_back(std::move(s));
  }
  result.frontier = pareto_front(result.comparable, CostAxis::kSpeedup);
  std::vector<Submission> shipped_subs;
  std::vector<size_t> shipped_index;
  for (size_t i = 0; i < result.comparable.size(); ++i) {
    if (!result.shipped[i]) continue;
    shipped_subs.push_back(result.comparable[i]);
    shipped_index.push_back(i);
  }
  for (size_t k : pareto_front(shipped_subs, CostAxis::kSpeedup))
    result.shipped_frontier.push_back(shipped_index[k]);
  for (size_t f : result.frontier) {
    if (result.shipped[f]) continue;
    for (size_t s : result.shipped_frontier)
      if (beats(result.comparable[f], result.comparable[s])) result.beats.emplace_back(f, s);
  }
}

// ---- reports ------------------------------------------------------------------------------

std::string verdict_summary(const Submission& s) {
  const std::string acc =
      str_cat("acc ", figure("%.3f", s.accuracy), " (", figure("%+.3f", s.accuracy_delta()), ")");
  if (s.accepted) {
    return str_cat(
        "accepted, ", acc, ", ",
        s.speedup_estimated ? figure("~%.2fx", s.speedup) + " est" : figure("%.2fx", s.speedup));
  }
  std::string out = str_cat("rejected at ", s.failed_stage.empty() ? "?" : s.failed_stage);
  if (s.failed_stage == kStageRecall) {
    out += str_cat(", recall ", figure("%.3f", s.recall));
  } else if (s.failed_stage == kStageAccuracy) {
    out += ", " + acc;
  } else {
    for (const StageResult& st : s.stages)
      if (st.status == StageStatus::kFailed && !st.reason.empty())
        out += ": " + printable(st.reason, 200);
  }
  return out;
}

std::string explore_report_text(const ExploreResult& r) {
  std::string out;
  const Json& p = r.parameters;
  size_t accepted = 0;
  for (size_t i = 0; i < r.comparable.size(); ++i)
    accepted += r.from_this_run[i] && r.comparable[i].accepted;
  out += str_cat("This run: ", r.submitted_ids.size(), " submitted, ", accepted, " accepted");
  if (!r.skipped_ids.empty())
    out += str_cat(", ", r.skipped_ids.size(), " skipped (the store had them)");
  out += ".\n";
  out +=
      str_cat("Pareto frontier of accuracy vs decode speed-up (~ estimated from bytes) among the ",
              r.comparable.size(), " stored submissions judged like this run (",
              p.value("model", std::string("?")), ", ", p.value("tasks", std::string("?")),
              ", context ", p.value("context", 0), ", ", p.value("samples", 0),
              " samples per task, page size ", p.value("page_size", 0), "):\n");
  if (r.frontier.empty()) {
    out += "  none: no submission with these parameters was accepted\n";
  } else {
    size_t name_width = 4;
    for (size_t i : r.frontier)
      name_width = std::max(name_width, printable(r.comparable[i].name, 48).size());
    char line[256];
    std::snprintf(line, sizeof line, "  %-7s %5s  %-*s  %-8s  %8s  %7s  %8s  %7s\n", "run", "id",
                  static_cast<int>(name_width), "name", "kind", "accuracy", "vs full", "speed-up",
                  "KV read");
    out += line;
    for (size_t i : r.frontier) {
      const Submission& s = r.comparable[i];
      std::snprintf(line, sizeof line, "  %-7s %5lld  %-*s  %-8s  %8s  %7s  %8s  %7s\n",
                    r.from_this_run[i] ? "new" : "earlier", static_cast<long long>(s.id),
                    static_cast<int>(name_width), printable(s.name, 48).c_str(),
                    r.shipped[i] ? "shipped" : "mutation", figure("%.3f", s.accuracy).c_str(),
                    figure("%+.3f", s.accuracy_delta()).c_str(), speedup_text(s).c_str(),
                    figure("%.1f%%", 100 * s.kv_read_fraction).c_str());
      out += line;
    }
    out += "  (run: new = submitted by this run; kind: shipped = an unmodified shipped flow)\n";
  }
  if (r.shipped_frontier.empty()) {
    out +=
        "No shipped flow has an accepted verdict with these parameters: nothing to compare "
        "against";
    out += r.frontier.empty() ? ".\n" : "; the frontier above is what explore found.\n";
  } else if (r.beats.empty()) {
    out += str_cat(
        "Nothing beat the shipped flows: no other flow is at least as accurate and as "
        "fast (and more accurate, or ",
        100 * kMinSpeedupGain, "% faster) as ");
    for (size_t k = 0; k < r.shipped_frontier.size(); ++k)
      out += (k ? ", " : "") + point_text(r.comparable[r.shipped_frontier[k]]);
    out += ".\n";
    size_t trading = 0;
    for (size_t f : r.frontier) trading += !r.shipped[f];
    if (trading > 0)
      out += str_cat(trading, " other flow", trading == 1 ? " is" : "s are",
                     " on the frontier without beating them: trading accuracy for speed, or "
                     "gaining less than ",
                     100 * kMinSpeedupGain, "%.\n");
  } else {
    out += str_cat("Beat the shipped flows (at least as accurate and as fast; more accurate, or ",
                   100 * kMinSpeedupGain, "% faster):\n");
    for (const auto& [better, worse] : r.beats) {
      out += str_cat("  ", point_text(r.comparable[better]),
                     r.from_this_run[better] ? " [new]" : " [earlier]", " over ",
                     point_text(r.comparable[worse]), "\n");
    }
  }
  if (r.exhausted) out += "Every candidate has been submitted with these parameters.\n";
  return out;
}

Json explore_report_json(const ExploreResult& r) {
  Json frontier = Json::array();
  auto num = [](double v) { return std::isfinite(v) ? Json(v) : Json(nullptr); };
  for (size_t i : r.frontier) {
    const Submission& s = r.comparable[i];
    frontier.push_back({{"id", s.id},
                        {"name", s.name},
                        {"accuracy", num(s.accuracy)},
                        {"full_accuracy", num(s.full_accuracy)},
                        {"speedup", num(s.speedup)},
                        {"speedup_estimated", s.speedup_estimated},
                        {"from_this_run", static_cast<bool>(r.from_this_run[i])},
                        {"shipped", static_cast<bool>(r.shipped[i])}});
  }
  Json beats = Json::array();
  for (const auto& [better, worse] : r.beats) {
    beats.push_back({{"id", r.comparable[better].id},
                     {"name", r.comparable[better].name},
                     {"beats_id", r.comparable[worse].id},
                     {"beats_name", r.comparable[worse].name}});
  }
  Json shipped = Json::array();
  for (size_t i : r.shipped_frontier) shipped.push_back(r.comparable[i].id);
  return {{"parameters", r.parameters},
          {"submitted", r.submitted_ids},
          {"skipped", r.skipped_ids},
          {"comparable", r.comparable.size()},
          {"frontier", frontier},
          {"shipped_frontier", shipped},
          {"beats_shipped", !r.beats.empty()},
          {"beats", beats},
          {"exhausted", r.exhausted},
          {"dropped_uncompilable", r.dropped_uncompilable}};
}

}  // namespace vortex::agent
