// The leaderboard of the agent loop (`vortex leaderboard`): every stored submission in a table,
// the Pareto frontier of accuracy against cost, and a scatter plot of both as SVG.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "agent/submission.h"
#include "core/json_file.h"

namespace vortex::agent {

// The cost axis: decode speed-up over full attention (higher is better) or the fraction of full
// attention's KV pages read (lower is better).
enum class CostAxis { kSpeedup, kKvRead };

// The axis figure of `s` (speedup or kv_read_fraction; NaN if not measured).
double axis_value(const Submission& s, CostAxis axis);

// Indices into `subs` of the Pareto frontier of accuracy (higher is better) against `axis`, among
// the submissions with both figures finite: a submission is on it when no other is at least as
// good on both and better on one (identical points are all kept). Sorted best on the axis first
// (highest speed-up, lowest KV read), then by index.
std::vector<size_t> pareto_front(const std::vector<Submission>& subs, CostAxis axis);

// A plain-text table of every submission (id, name, verdict, accuracy, delta vs full attention,
// recall, speed-up ("~" when estimated), KV read, created_at), rows on either frontier marked
// '*', then one line per frontier. Names are made printable (no control characters).
std::string leaderboard_text(const std::vector<Submission>& subs);

// {"submissions": [to_json(s) without "source", plus "on_frontier_speedup" and
// "on_frontier_kv_read"], "frontier_speedup": [ids], "frontier_kv_read": [ids]}.
Json leaderboard_json(const std::vector<Submission>& subs);

// A self-contained SVG (800x500, no external resources) scattering accuracy against `axis`:
// accepted submissions filled, rejected hollow and grey, estimated speed-ups as diamonds, the
// frontier as a step line with its points labelled "name (#id)", a dashed line at full
// attention's accuracy (the mean of the known full_accuracy figures). Every text is escaped;
// submissions without both figures are counted in a note, not plotted.
std::string leaderboard_svg(const std::vector<Submission>& subs, CostAxis axis);

}  // namespace vortex::agent
