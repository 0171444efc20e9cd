#include "agent/leaderboard.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <string_view>

#include "core/error.h"

namespace vortex::agent {

namespace {

// ---- text helpers -------------------------------------------------------------------------

// `s` decoded as UTF-8; a byte that does not start a valid sequence (overlong forms and
// surrogates included) becomes U+FFFD, so names from users always re-encode as valid UTF-8.
std::u32string decode_utf8(std::string_view s) {
  static constexpr char32_t kMinForLength[] = {0, 0, 0x80, 0x800, 0x10000};
  std::u32string out;
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    char32_t cp = 0;
    size_t len = 0;
    if (c < 0x80) {
      cp = c, len = 1;
    } else if ((c & 0xE0) == 0xC0) {
      cp = c & 0x1F, len = 2;
    } else if ((c & 0xF0) == 0xE0) {
      cp = c & 0x0F, len = 3;
    } else if ((c & 0xF8) == 0xF0) {
      cp = c & 0x07, len = 4;
    }
    bool ok = len > 0 && i + len <= s.size();
    for (size_t k = 1; ok && k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      ok = (cc & 0xC0) == 0x80;
      cp = (cp << 6) | (cc & 0x3F);
    }
    ok = ok && cp >= kMinForLength[len] && !(cp >= 0xD800 && cp <= 0xDFFF) && cp <= 0x10FFFF;
    if (!ok) {
      out += U'\uFFFD';
      ++i;
      continue;
    }
    out += cp;
    i += len;
  }
  return out;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// Code points of `s` cut to `max_chars` (the last one an ellipsis when cut).
std::u32string clipped(std::string_view s, size_t max_chars) {
  std::u32string cps = decode_utf8(s);
  if (cps.size() > max_chars) {
    cps.resize(max_chars - 1);
    cps += U'\u2026';
  }
  return cps;
}

// A name for the text table: control characters escaped, valid UTF-8, at most `max_chars`.
std::string table_name(const std::string& name, size_t max_chars) {
  std::string out;
  for (char32_t cp : clipped(printable(name, 4 * max_chars), max_chars)) append_utf8(out, cp);
  return out;
}

size_t text_width(std::string_view s) {
  return decode_utf8(s).size();
}

std::string pad_right(const std::string& s, size_t width) {
  const size_t w = text_width(s);
  return w >= width ? s : s + std::string(width - w, ' ');
}

std::string pad_left(const std::string& s, size_t width) {
  const size_t w = text_width(s);
  return w >= width ? s : std::string(width - w, ' ') + s;
}

// Text as XML character data or an attribute value: entities for the five special characters,
// and what XML 1.0 cannot hold (control characters, U+FFFE/U+FFFF) replaced.
std::string xml_escape(std::string_view s, size_t max_chars = 1000) {
  std::string out;
  for (char32_t cp : clipped(s, max_chars)) {
    switch (cp) {
      case U'&':
        out += "&amp;";
        break;
      case U'<':
        out += "&lt;";
        break;
      case U'>':
        out += "&gt;";
        break;
      case U'"':
        out += "&quot;";
        break;
      case U'\'':
        out += "&apos;";
        break;
      default:
        if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp < 0xA0))
          out += ' ';
        else if (cp == 0xFFFE || cp == 0xFFFF)
          append_utf8(out, U'\uFFFD');
        else
          append_utf8(out, cp);
    }
  }
  return out;
}

__attribute__((format(printf, 1, 2))) std::string format(const char* fmt, ...) {
  va_list ap, again;
  va_start(ap, fmt);
  va_copy(again, ap);
  const int n = std::vsnprintf(nullptr, 0, fmt, ap);
  va_end(ap);
  std::string out(n > 0 ? static_cast<size_t>(n) : 0, '\0');
  if (n > 0) std::vsnprintf(out.data(), out.size() + 1, fmt, again);
  va_end(again);
  return out;
}

bool finite(double v) {
  return std::isfinite(v);
}

std::string speedup_text(const Submission& s) {
  if (!finite(s.speedup)) return "-";
  return format(s.speedup_estimated ? "~%.2fx" : "%.2fx", s.speedup);
}

std::string kv_read_text(double f) {
  if (!finite(f)) return "-";
  if (!finite(100 * f)) return format("%.3g", f);  // an absurd figure from a hand-edited store
  return format(f < 0.01 ? "%.2f%%" : "%.1f%%", 100 * f);
}

std::string number_text(const char* fmt, double v) {
  return finite(v) ? format(fmt, v) : "-";
}

std::string verdict_text(const Submission& s) {
  if (s.accepted) return "accepted";
  if (!s.failed_stage.empty()) return "failed at " + table_name(s.failed_stage, 16);
  return "rejected";
}

// Higher is better on both axes after this: the KV read fraction is negated.
double goodness(const Submission& s, CostAxis axis) {
  const double x = axis_value(s, axis);
  return axis == CostAxis::kSpeedup ? x : -x;
}

bool plottable(const Submission& s, CostAxis axis) {
  return finite(s.accuracy) && finite(axis_value(s, axis));
}

std::vector<bool> frontier_mask(const std::vector<Submission>& subs, CostAxis axis) {
  std::vector<bool> mask(subs.size(), false);
  for (size_t i : pareto_front(subs, axis)) mask[i] = true;
  return mask;
}

}  // namespace

double axis_value(const Submission& s, CostAxis axis) {
  return axis == CostAxis::kSpeedup ? s.speedup : s.kv_read_fraction;
}

std::vector<size_t> pareto_front(const std::vector<Submission>& subs, CostAxis axis) {
  std::vector<size_t> candidates;
  for (size_t i = 0; i < subs.size(); ++i)
    if (plottable(subs[i], axis)) candidates.push_back(i);
  std::vector<size_t> front;
  for (size_t i : candidates) {
    const double acc = subs[i].accuracy, g = goodness(subs[i], axis);
    const bool dominated = std::any_of(candidates.begin(), candidates.end(), [&](size_t j) {
      const double acc_j = subs[j].accuracy, g_j = goodness(subs[j], axis);
      return acc_j >= acc && g_j >= g && (acc_j > acc || g_j > g);
    });
    if (!dominated) front.push_back(i);
  }
  std::sort(front.begin(), front.end(), [&](size_t a, size_t b) {
    const double ga = goodness(subs[a], axis), gb = goodness(subs[b], axis);
    if (ga != gb) return ga > gb;
    if (subs[a].accuracy != subs[b].accuracy) return subs[a].accuracy > subs[b].accuracy;
    return a < b;
  });
  return front;
}

// ---- text ---------------------------------------------------------------------------------

std::string leaderboard_text(const std::vector<Submission>& subs) {
  if (subs.empty()) return "no submissions yet\n";
  const std::vector<bool> on_speedup = frontier_mask(subs, CostAxis::kSpeedup);
  const std::vector<bool> on_kv = frontier_mask(subs, CostAxis::kKvRead);

  constexpr size_t kNameMax = 32;
  const std::vector<std::string> header = {"id",     "name",     "verdict", "accuracy", "vs full",
                                           "recall", "speed-up", "KV read", "created"};
  std::vector<std::vector<std::string>> rows;
  bool any_estimated = false, any_frontier = false;
  for (size_t i = 0; i < subs.size(); ++i) {
    const Submission& s = subs[i];
    any_estimated = any_estimated || (s.speedup_estimated && finite(s.speedup));
    any_frontier = any_frontier || on_speedup[i] || on_kv[i];
    rows.push_back({std::to_string(s.id), table_name(s.name, kNameMax), verdict_text(s),
                    number_text("%.3f", s.accuracy), number_text("%+.3f", s.accuracy_delta()),
                    number_text("%.3f", s.recall), speedup_text(s),
                    kv_read_text(s.kv_read_fraction), table_name(s.created_at, 24)});
  }
  std::vector<size_t> width(header.size());
  for (size_t c = 0; c < header.size(); ++c) {
    width[c] = text_width(header[c]);
    for (const auto& row : rows) width[c] = std::max(width[c], text_width(row[c]));
  }
  // Text columns read left-aligned, figures right-aligned.
  auto left_aligned = [](size_t c) { return c == 1 || c == 2 || c == 8; };
  auto line = [&](const std::vector<std::string>& cells, const char* mark) {
    std::string out = mark;
    for (size_t c = 0; c < cells.size(); ++c) {
      if (c) out += "  ";
      const bool last = c + 1 == cells.size();
      out += left_aligned(c) ? (last ? cells[c] : pad_right(cells[c], width[c]))
                             : pad_left(cells[c], width[c]);
    }
    return out + "\n";
  };
  std::string out = line(header, "  ");
  for (size_t i = 0; i < subs.size(); ++i)
    out += line(rows[i], on_speedup[i] || on_kv[i] ? "* " : "  ");

  std::string notes;
  if (any_frontier) notes += "* on a Pareto frontier";
  if (any_estimated)
    notes += std::string(notes.empty() ? "" : "; ") + "~ speed-up estimated from bytes (no GPU)";
  if (!notes.empty()) out += notes + "\n";

  auto frontier_line = [&](CostAxis axis, const char* title) {
    std::string text = std::string("Pareto frontier (accuracy vs ") + title + "): ";
    const std::vector<size_t> front = pareto_front(subs, axis);
    if (front.empty()) return text + "none (no submission has both figures)\n";
    for (size_t k = 0; k < front.size(); ++k) {
      const Submission& s = subs[front[k]];
      text += format(k ? ", #%lld " : "#%lld ", static_cast<long long>(s.id));
      text += table_name(s.name, kNameMax);
      text += format(" (%.3f, ", s.accuracy);
      text += axis == CostAxis::kSpeedup ? speedup_text(s) : kv_read_text(s.kv_read_fraction);
      text += ")";
    }
    return text + "\n";
  };
  out += '\n';
  out += frontier_line(CostAxis::kSpeedup, "speed-up");
  out += frontier_line(CostAxis::kKvRead, "KV read");
  return out;
}

// ---- JSON ---------------------------------------------------------------------------------

Json leaderboard_json(const std::vector<Submission>& subs) {
  const std::vector<bool> on_speedup = frontier_mask(subs, CostAxis::kSpeedup);
  const std::vector<bool> on_kv = frontier_mask(subs, CostAxis::kKvRead);
  Json list = Json::array();
  for (size_t i = 0; i < subs.size(); ++i) {
    Json j = to_json(subs[i]);
    j.erase("source");
    j["on_frontier_speedup"] = static_cast<bool>(on_speedup[i]);
    j["on_frontier_kv_read"] = static_cast<bool>(on_kv[i]);
    list.push_back(std::move(j));
  }
  auto ids = [&](CostAxis axis) {
    Json out = Json::array();
    for (size_t i : pareto_front(subs, axis)) out.push_back(subs[i].id);
    return out;
  };
  return {{"submissions", list},
          {"frontier_speedup", ids(CostAxis::kSpeedup)},
          {"frontier_kv_read", ids(CostAxis::kKvRead)}};
}

// ---- SVG ----------------------------------------------------------------------------------

namespace {

constexpr double kWidth = 800, kHeight = 500;
// The plot box, and the inset that keeps points at the ends of the range off the axis lines.
constexpr double kLeft = 76, kRight = 596, kTop = 66, kBottom = 414, kInset = 14;
constexpr double kLegendX = 618;
constexpr const char* kFont = "DejaVu Sans, Helvetica, Arial, sans-serif";
constexpr const char* kAccepted = "#2563eb";
constexpr const char* kRejected = "#9ca3af";
constexpr const char* kFrontier = "#ea580c";
constexpr const char* kInk = "#1f2937";
constexpr const char* kMuted = "#6b7280";
constexpr const char* kGrid = "#e5e7eb";

struct Range {
  double lo = 0, hi = 1;
  double step = 0.2;
  std::vector<double> ticks;
};

// Extends [lo, hi] to whole steps of 1, 2 or 5 x 10^k, about `target` of them.
Range nice_range(double lo, double hi, int target) {
  Range r;
  const double raw = (hi - lo) / target;
  // Figures from a hand-edited store can be absurd (1e308 apart): fall back to [0, 1].
  if (!(raw > 0) || !std::isfinite(raw) || !std::isfinite(lo) || !std::isfinite(hi))
    return nice_range(0, 1, target);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  r.step = 10 * mag;
  for (double m : {1.0, 2.0, 5.0}) {
    if (m * mag >= raw * (1 - 1e-9)) {
      r.step = m * mag;
      break;
    }
  }
  r.lo = std::floor(lo / r.step + 1e-9) * r.step;
  r.hi = std::ceil(hi / r.step - 1e-9) * r.step;
  if (!std::isfinite(r.lo) || !std::isfinite(r.hi)) return nice_range(0, 1, target);
  for (int k = 0; k <= 100 && r.lo + k * r.step <= r.hi + r.step / 2; ++k) {
    const double t = r.lo + k * r.step;
    r.ticks.push_back(std::abs(t) < r.step * 1e-9 ? 0.0 : t);
  }
  return r;
}

// The range of `values` (finite), widened when it is a single value, clamped to [0, 1] for
// fractions (accuracy, KV read) and to >= 0 for speed-ups, then made nice.
Range axis_range(const std::vector<double>& values, bool fraction, double empty_lo,
                 double empty_hi) {
  if (values.empty()) return nice_range(empty_lo, empty_hi, 5);
  double lo = *std::min_element(values.begin(), values.end());
  double hi = *std::max_element(values.begin(), values.end());
  const double data_lo = lo, data_hi = hi;
  if (hi - lo < 1e-9 * std::max(1.0, std::abs(hi))) {
    const double pad = fraction ? 0.05 : std::max(0.1 * std::abs(hi), 0.05);
    lo -= pad;
    hi += pad;
  }
  if (data_lo >= 0) lo = std::max(lo, 0.0);
  if (fraction && data_hi <= 1) hi = std::min(hi, 1.0);
  return nice_range(lo, hi, 5);
}

int decimals_for(double step) {
  return std::max(0, static_cast<int>(-std::floor(std::log10(step) + 1e-9)));
}

struct Box {
  double x0, y0, x1, y1;
  bool overlaps(const Box& o) const { return x0 < o.x1 && o.x0 < x1 && y0 < o.y1 && o.y0 < y1; }
};

// A text label with a white halo, so it stays readable over grid lines and the frontier.
std::string halo_text(double x, double y, const char* anchor, double size, const char* fill,
                      const std::string& escaped, const char* weight = "normal") {
  std::string attrs =
      format("x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\" font-size=\"%.0f\" ", x, y, anchor, size) +
      "font-weight=\"" + weight + "\"";
  return "<text " + attrs +
         " fill=\"none\" stroke=\"#ffffff\" stroke-width=\"3.5\" stroke-linejoin=\"round\">" +
         escaped + "</text>\n<text " + attrs + " fill=\"" + fill + "\">" + escaped + "</text>\n";
}

std::string marker(double x, double y, bool diamond, bool filled, double size = 5.5) {
  const std::string style =
      filled ? format("fill=\"%s\" stroke=\"#ffffff\" stroke-width=\"1.2\"", kAccepted)
             : format("fill=\"#ffffff\" stroke=\"%s\" stroke-width=\"1.8\"", kRejected);
  if (diamond) {
    const double d = size * 1.35;
    return format("<polygon points=\"%.1f,%.1f %.1f,%.1f %.1f,%.1f %.1f,%.1f\" ", x, y - d, x + d,
                  y, x, y + d, x - d, y) +
           style + "/>";
  }
  return format("<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" ", x, y, size) + style + "/>";
}

// One chart being drawn: the submissions and the axis, the scales, the boxes already taken by
// marks and labels (new labels avoid them) and the SVG so far. draw() adds the parts in order.
class Chart {
 public:
  Chart(const std::vector<Submission>& subs, CostAxis axis);
  std::string draw() {
    frame_and_axes();
    mark_points_taken();
    reference_lines();
    frontier_line();
    draw_points();
    draw_labels();
    draw_legend();
    note_unplotted();
    svg += "</svg>\n";
    return svg;
  }

 private:
  // Pixels; always finite and within the plot box (only absurd figures need the clamp).
  static double to_pixel(double v, const Range& r, double from, double to) {
    const double p = from + (v - r.lo) / (r.hi - r.lo) * (to - from);
    return std::isfinite(p) ? std::clamp(p, std::min(from, to), std::max(from, to))
                            : (from + to) / 2;
  }
  double px(double v) const { return to_pixel(v, xr, kLeft + kInset, kRight - kInset); }
  double py(double v) const { return to_pixel(v, yr, kBottom - kInset, kTop + kInset); }
  bool is_free(const Box& box) const {
    return std::none_of(taken.begin(), taken.end(), [&](const Box& o) { return box.overlaps(o); });
  }
  void frame_and_axes();
  void mark_points_taken();
  void reference_lines();
  void frontier_line();
  void draw_points();
  void place_label(size_t i, bool frontier);
  void draw_labels();
  void draw_legend();
  void note_unplotted();

  const std::vector<Submission>& subs;
  const CostAxis axis;
  const bool speedup_axis;
  std::vector<size_t> plotted;
  double full_accuracy = kNotMeasured;
  Range xr, yr;
  std::vector<size_t> front;
  std::vector<bool> on_front;
  std::vector<Box> taken;
  std::string svg;
};

Chart::Chart(const std::vector<Submission>& subs_in, CostAxis axis_in)
    : subs(subs_in), axis(axis_in), speedup_axis(axis_in == CostAxis::kSpeedup) {
  std::vector<double> xs, ys;
  double full_sum = 0;
  int full_n = 0;
  for (size_t i = 0; i < subs.size(); ++i) {
    if (finite(subs[i].full_accuracy)) full_sum += subs[i].full_accuracy, ++full_n;
    if (!plottable(subs[i], axis)) continue;
    plotted.push_back(i);
    xs.push_back(axis_value(subs[i], axis));
    ys.push_back(subs[i].accuracy);
  }
  full_accuracy = full_n ? full_sum / full_n : kNotMeasured;
  std::vector<double> y_values = ys;
  if (finite(full_accuracy)) y_values.push_back(full_accuracy);
  xr = axis_range(xs, !speedup_axis, speedup_axis ? 1 : 0, speedup_axis ? 3 : 1);
  yr = axis_range(y_values, true, 0, 1);
  front = pareto_front(subs, axis);
  on_front.assign(subs.size(), false);
  for (size_t i : front) on_front[i] = true;
}

// Background, title, plot box, grid, ticks and axis labels.
void Chart::frame_and_axes() {
  svg = format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
      "viewBox=\"0 0 %.0f %.0f\" font-family=\"%s\">\n",
      kWidth, kHeight, kWidth, kHeight, kFont);
  svg += format("<rect width=\"%.0f\" height=\"%.0f\" fill=\"#ffffff\"/>\n", kWidth, kHeight);

  // Title and subtitle.
  const char* title = speedup_axis ? "Accuracy vs decode speed-up over full attention"
                                   : "Accuracy vs KV read (fraction of full attention's pages)";
  svg += format("<text x=\"%.0f\" y=\"30\" font-size=\"18\" font-weight=\"bold\" fill=\"%s\">",
                kLeft - 50, kInk) +
         xml_escape(title) + "</text>\n";
  svg +=
      format("<text x=\"%.0f\" y=\"50\" font-size=\"12\" fill=\"%s\">", kLeft - 50, kMuted) +
      xml_escape(format("vortex leaderboard: %zu submission%s, %zu plotted, %zu on the Pareto "
                        "frontier",
                        subs.size(), subs.size() == 1 ? "" : "s", plotted.size(), front.size())) +
      "</text>\n";

  // Plot box, grid and ticks.
  svg += format(
      "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"#fbfbfc\" "
      "stroke=\"none\"/>\n",
      kLeft, kTop, kRight - kLeft, kBottom - kTop);
  const int x_decimals = decimals_for(speedup_axis ? xr.step : 100 * xr.step);
  for (double t : xr.ticks) {
    const double x = px(t);
    svg += format("<line x1=\"%.1f\" y1=\"%.0f\" x2=\"%.1f\" y2=\"%.0f\" stroke=\"%s\"/>\n", x,
                  kTop, x, kBottom, kGrid);
    svg += format("<line x1=\"%.1f\" y1=\"%.0f\" x2=\"%.1f\" y2=\"%.0f\" stroke=\"%s\"/>\n", x,
                  kBottom, x, kBottom + 5, kInk);
    if (!std::isfinite(100 * t)) continue;  // only absurd figures get here
    const std::string label =
        speedup_axis ? format("%.*fx", x_decimals, t) : format("%.*f%%", x_decimals, 100 * t);
    svg += format(
               "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\" font-size=\"11\" "
               "fill=\"%s\">",
               x, kBottom + 19, kInk) +
           label + "</text>\n";
  }
  const int y_decimals = decimals_for(yr.step);
  for (double t : yr.ticks) {
    const double y = py(t);
    svg += format("<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" stroke=\"%s\"/>\n", kLeft,
                  y, kRight, y, kGrid);
    svg += format("<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" stroke=\"%s\"/>\n",
                  kLeft - 5, y, kLeft, y, kInk);
    svg += format("<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\" font-size=\"11\" fill=\"%s\">",
                  kLeft - 8, y + 4, kInk) +
           format("%.*f", y_decimals, t) + "</text>\n";
  }
  svg += format(
      "<path d=\"M%.0f %.0f V%.0f H%.0f\" fill=\"none\" stroke=\"%s\" "
      "stroke-width=\"1.2\"/>\n",
      kLeft, kTop, kBottom, kRight, kInk);
  const char* x_label = speedup_axis
                            ? "decode speed-up over full attention (higher is better \u2192)"
                            : "KV read, fraction of full attention's (\u2190 lower is better)";
  svg += format(
             "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\" font-size=\"13\" "
             "fill=\"%s\">",
             (kLeft + kRight) / 2, kBottom + 42, kInk) +
         xml_escape(x_label) + "</text>\n";
  svg += format(
             "<text transform=\"translate(%.0f %.0f) rotate(-90)\" text-anchor=\"middle\" "
             "font-size=\"13\" fill=\"%s\">",
             kLeft - 50, (kTop + kBottom) / 2, kInk) +
         xml_escape("accuracy (higher is better \u2192)") + "</text>\n";
}

void Chart::mark_points_taken() {
  // What labels must not cover: the points (with their frontier rings), the reference line's
  // label and the frontier's segments.
  for (size_t i : plotted) {
    const double x = px(axis_value(subs[i], axis)), y = py(subs[i].accuracy);
    const double r = on_front[i] ? 11 : 7;
    taken.push_back({x - r, y - r, x + r, y + r});
  }
}

void Chart::reference_lines() {
  // Reference lines: full attention's accuracy, and for speed-ups its speed (1x).
  if (speedup_axis && 1 > xr.lo && 1 < xr.hi)
    svg += format(
        "<line x1=\"%.1f\" y1=\"%.0f\" x2=\"%.1f\" y2=\"%.0f\" stroke=\"%s\" "
        "stroke-dasharray=\"2 4\"/>\n",
        px(1), kTop, px(1), kBottom, kMuted);
  if (finite(full_accuracy)) {
    const double y = py(full_accuracy);
    svg += format(
        "<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" stroke=\"%s\" "
        "stroke-width=\"1.5\" stroke-dasharray=\"7 5\"/>\n",
        kLeft, y, kRight, y, kMuted);
    // Its label at the right end, or the left end where points crowd the right.
    const std::string label = format("full attention %.3f", full_accuracy);
    const double w = 0.62 * 11 * static_cast<double>(label.size());
    const Box right{kRight - 6 - w, y - 18, kRight - 6, y - 3};
    const Box left{kLeft + 6, y - 18, kLeft + 6 + w, y - 3};
    const bool at_left = !is_free(right) && is_free(left);
    taken.push_back(at_left ? left : right);
    svg += halo_text(at_left ? kLeft + 6 : kRight - 6, y - 6, at_left ? "start" : "end", 11, kMuted,
                     xml_escape(label));
  }
}

void Chart::frontier_line() {
  // The frontier: a step line through its points, each corner the worse of two neighbours on
  // both figures, so everything below it is dominated.
  if (!front.empty()) {
    std::vector<size_t> by_x = front;
    std::sort(by_x.begin(), by_x.end(), [&](size_t a, size_t b) {
      return axis_value(subs[a], axis) < axis_value(subs[b], axis);
    });
    std::string d =
        format("M%.1f %.1f", px(axis_value(subs[by_x[0]], axis)), py(subs[by_x[0]].accuracy));
    for (size_t k = 1; k < by_x.size(); ++k) {
      const Submission& a = subs[by_x[k - 1]];
      const Submission& b = subs[by_x[k]];
      const double cx = speedup_axis ? axis_value(a, axis) : axis_value(b, axis);
      const double cy = std::min(a.accuracy, b.accuracy);
      // Both segments, as boxes a label must avoid.
      const double ax = px(axis_value(a, axis)), ay = py(a.accuracy);
      const double bx = px(axis_value(b, axis)), by = py(b.accuracy);
      for (const auto& [x0, y0, x1, y1] : {std::array<double, 4>{ax, ay, px(cx), py(cy)},
                                           std::array<double, 4>{px(cx), py(cy), bx, by}})
        taken.push_back({std::min(x0, x1) - 2, std::min(y0, y1) - 2, std::max(x0, x1) + 2,
                         std::max(y0, y1) + 2});
      d +=
          format(" L%.1f %.1f L%.1f %.1f", px(cx), py(cy), px(axis_value(b, axis)), py(b.accuracy));
    }
    svg += "<path d=\"" + d + "\" fill=\"none\" stroke=\"" + kFrontier +
           "\" stroke-width=\"2.2\" stroke-linejoin=\"round\" opacity=\"0.85\"/>\n";
  }
}

void Chart::draw_points() {
  // Points: rejected under accepted, the frontier on top; each with a tooltip.
  std::vector<size_t> order = plotted;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    auto rank = [&](size_t i) { return on_front[i] ? 2 : subs[i].accepted ? 1 : 0; };
    return rank(a) < rank(b);
  });
  for (size_t i : order) {
    const Submission& s = subs[i];
    const double x = px(axis_value(s, axis)), y = py(s.accuracy);
    const bool diamond = speedup_axis && s.speedup_estimated;
    const std::string tip = format("#%lld ", static_cast<long long>(s.id)) + s.name.substr(0, 200) +
                            ": accuracy " + format("%.3f", s.accuracy) + ", " +
                            (speedup_axis ? "speed-up " + speedup_text(s)
                                          : "KV read " + kv_read_text(s.kv_read_fraction)) +
                            ", " + verdict_text(s);
    svg += "<g><title>" + xml_escape(tip) + "</title>";
    if (on_front[i])
      svg += format(
          "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"9.5\" fill=\"none\" stroke=\"%s\" "
          "stroke-width=\"1.6\"/>",
          x, y, kFrontier);
    svg += marker(x, y, diamond, s.accepted) + "</g>\n";
  }
}

void Chart::place_label(size_t i, bool frontier) {
  const Submission& s = subs[i];
  const double size = frontier ? 11.5 : 10;
  const std::u32string cps = clipped(s.name, 26);
  std::string shown;
  for (char32_t cp : cps) append_utf8(shown, cp);
  shown += format(" (#%lld)", static_cast<long long>(s.id));
  const double w = (frontier ? 0.66 : 0.6) * size * static_cast<double>(text_width(shown));
  const double h = size + 2;
  const double x = px(axis_value(s, axis)), y = py(s.accuracy);
  // Beside the point on the side with room, else the other side, then ever further above or
  // below it; a frontier label that finds no free place still goes beside its point.
  const bool prefer_right = x + 12 + w <= kRight - 2;
  auto box_at = [&](bool right, double dy) {
    const double base = y + 4 + dy;
    return right ? Box{x + 11, base - h + 3, x + 11 + w, base + 3}
                 : Box{x - 11 - w, base - h + 3, x - 11, base + 3};
  };
  auto inside = [&](const Box& b) {
    return b.y0 >= kTop && b.y1 <= kBottom && b.x0 >= kLeft && b.x1 <= kRight;
  };
  for (double dy : {0.0, -14.0, 14.0, -26.0, 26.0, -38.0, 38.0, -50.0, 50.0}) {
    for (bool right : {prefer_right, !prefer_right}) {
      const Box box = box_at(right, dy);
      const bool last_resort = frontier && dy == 50.0 && right != prefer_right;
      if (!last_resort && (!inside(box) || !is_free(box))) continue;
      const Box shown_box = last_resort ? box_at(prefer_right, 0) : box;
      const bool shown_right = last_resort ? prefer_right : right;
      const double base = shown_box.y1 - 3;
      taken.push_back(shown_box);
      if (base != y + 4)  // a leader line from the point to its displaced label
        svg += format(
            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
            "stroke-width=\"0.8\"/>\n",
            x + (shown_right ? 6 : -6), y, shown_right ? shown_box.x0 - 1 : shown_box.x1 + 1,
            base - size / 3, kMuted);
      svg += halo_text(shown_right ? shown_box.x0 : shown_box.x1, base,
                       shown_right ? "start" : "end", size, frontier ? kInk : kMuted,
                       xml_escape(shown), frontier ? "bold" : "normal");
      return;
    }
  }
}

void Chart::draw_labels() {
  // Labels: the frontier's first, then others where they fit without overlapping.
  for (size_t i : front) place_label(i, true);
  if (plotted.size() <= 24)
    for (size_t i : plotted)
      if (!on_front[i]) place_label(i, false);

  if (plotted.empty())
    svg += format(
               "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\" font-size=\"14\" "
               "fill=\"%s\">",
               (kLeft + kRight) / 2, (kTop + kBottom) / 2, kMuted) +
           xml_escape(subs.empty() ? "no submissions yet" : "no submission has both figures yet") +
           "</text>\n";
}

void Chart::draw_legend() {
  // Legend.
  double ly = kTop + 8;
  svg += format(
      "<text x=\"%.0f\" y=\"%.0f\" font-size=\"12\" font-weight=\"bold\" "
      "fill=\"%s\">legend</text>\n",
      kLegendX, ly, kInk);
  auto legend_row = [&](const std::string& symbol, const std::string& label) {
    ly += 22;
    svg += symbol +
           format("<text x=\"%.0f\" y=\"%.0f\" font-size=\"11.5\" fill=\"%s\">", kLegendX + 24,
                  ly + 4, kInk) +
           xml_escape(label) + "</text>\n";
  };
  legend_row(marker(kLegendX + 8, ly + 22, false, true) + "\n", "accepted");
  legend_row(marker(kLegendX + 8, ly + 22, false, false) + "\n", "rejected");
  if (speedup_axis)
    legend_row(format("<polygon points=\"%.1f,%.1f %.1f,%.1f %.1f,%.1f %.1f,%.1f\" fill=\"none\" "
                      "stroke=\"%s\" stroke-width=\"1.6\"/>\n",
                      kLegendX + 8, ly + 22 - 7.4, kLegendX + 15.4, ly + 22, kLegendX + 8,
                      ly + 29.4, kLegendX + 0.6, ly + 22, kInk),
               "estimated speed-up");
  if (speedup_axis) {
    svg += format("<text x=\"%.0f\" y=\"%.0f\" font-size=\"10\" fill=\"%s\">", kLegendX + 24,
                  ly + 18, kMuted) +
           xml_escape("(from bytes read, no GPU)") + "</text>\n";
    ly += 10;
  }
  legend_row(format("<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"%s\" "
                    "stroke-width=\"2.2\"/><circle cx=\"%.0f\" cy=\"%.0f\" r=\"5\" fill=\"none\" "
                    "stroke=\"%s\" stroke-width=\"1.6\"/>\n",
                    kLegendX - 2, ly + 22, kLegendX + 18, ly + 22, kFrontier, kLegendX + 8, ly + 22,
                    kFrontier),
             "Pareto frontier");
  if (finite(full_accuracy))
    legend_row(format("<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"%s\" "
                      "stroke-width=\"1.5\" stroke-dasharray=\"5 3\"/>\n",
                      kLegendX - 2, ly + 22, kLegendX + 18, ly + 22, kMuted),
               "full attention's accuracy");
}

void Chart::note_unplotted() {
  // What is not on the plot, so an empty-looking chart is never a mystery.
  const size_t missing = subs.size() - plotted.size();
  if (missing > 0) {
    const std::string note =
        format("%zu submission%s without both accuracy and %s: not plotted", missing,
               missing == 1 ? "" : "s", speedup_axis ? "speed-up" : "KV read");
    svg += format("<text x=\"%.0f\" y=\"%.0f\" font-size=\"11\" fill=\"%s\">", kLeft - 50,
                  kHeight - 12, kMuted) +
           xml_escape(note) + "</text>\n";
  }
}

}  // namespace

std::string leaderboard_svg(const std::vector<Submission>& subs, CostAxis axis) {
  return Chart(subs, axis).draw();
}

}  // namespace vortex::agent
