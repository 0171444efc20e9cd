// `vortex explore`: an unattended search over flows that needs no language model. It mutates
// the shipped flows' budgets and templates, writes each candidate to a file and judges it with
// the same staged verdict as `vortex submit` (submit_pipeline.h), keeping every verdict in the
// same results store; then it reports the Pareto frontier of accuracy against the decode
// speed-up among every stored submission judged with the same evaluation parameters, and
// whether a candidate beat the shipped flows.
//
// Mutations of a base flow (each a dimension; option 0 is the base's own value):
//   budget     ratio 1/4, 1/8, 1/16, 1/32; sink pages 0, 1, 2; recent pages 1, 2, 4; dense layers
//              [0], [], [0, 1] -- written into the candidate's `budget = Budget(...)` line, so the
//              stored source is the whole truth;
//   dtype      every shaped Field stored in int8 (or back in bf16 when the base's are all int8);
//              scalar Fields are left alone (an int8 scalar costs more than a bf16 one);
//   reduction  over the GQA group's heads in score: max <-> mean where score has exactly one
//              `.max(axis=-1)` or `.mean(axis=-1)`, and `.max(axis=(1, 2))` (heads and groups,
//              subpage_quest) -> `.max(axis=2).mean(axis=1)`;
//   constants  module constants with a known meaning: GROUP (tokens per sub-page) 2, 4, 8 and
//              DECAY (H2O's per-step decay) 0.5, 0.9, 0.99.
// Candidates come in a fixed order for a seed: the unmodified bases first, then every
// single-dimension mutation, then every two-dimension one, and so on; within a level each base's
// candidates are shuffled by the seed and the bases take turns.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "agent/submission.h"
#include "agent/submit_pipeline.h"
#include "core/json_file.h"
#include "flow/ir.h"

namespace vortex::agent {

class ResultsStore;

// A flow explore starts from.
struct BaseFlow {
  std::string path;           // as given
  std::string name;           // the file stem ("quest")
  std::string source;         // its text
  flow::BudgetPolicy budget;  // as compiled (defaults where the flow omits a keyword)
  size_t fields = 0;          // its Fields and States
};

// Reads and compiles (symbolically) the flow at `path`. Throws vortex::Error naming the path when
// it cannot be read or does not compile.
BaseFlow read_base_flow(const std::string& path);

// read_base_flow of each, checked as explore's bases: each a page-scoring flow, no two with the
// same name (candidates are named after their base). Throws usage errors naming --flows.
std::vector<BaseFlow> read_base_flows(const std::vector<std::string>& paths);

// A flow that scores pages: it has at least one Field or State and its budget takes pages by
// score (not `pages=0`, as streaming.py's). Only these are worth mutating.
bool is_page_scoring_flow(const BaseFlow& flow);

// One generated flow.
struct Candidate {
  std::string name;         // the submission's name, "<base>__<tag>" (the base's own for a base)
  std::string base;         // the base flow's name
  std::string base_path;    // the base flow's path
  std::string tag;          // the short mutation tag ("r32_s0"); "" for the unmodified base
  std::string description;  // what was mutated ("ratio 1/32 (was 1/16), sink 0 (was 1)")
  std::string source;       // the whole text; a mutation's first line is a comment saying what
  int mutations = 0;        // how many dimensions differ from the base (0: the base itself)
  bool is_base() const { return mutations == 0; }
};

// A geometry the generated candidates must compile for (the evaluation model's, the throughput
// workload's), with its layer count (dense_layers must exist).
struct CompileTarget {
  flow::FlowGeometry geometry;
  int64_t num_layers = 0;
};

// The candidates of `bases` in the order described above, each source at most once. With
// `targets`, a mutation that does not compile for every target is dropped (counted); the bases
// are always produced.
class CandidateGenerator {
 public:
  CandidateGenerator(std::vector<BaseFlow> bases, uint64_t seed,
                     std::vector<CompileTarget> targets = {});
  ~CandidateGenerator();
  CandidateGenerator(CandidateGenerator&&) noexcept;
  CandidateGenerator& operator=(CandidateGenerator&&) noexcept;

  // The next candidate, or nullopt when every combination has been produced.
  std::optional<Candidate> next();
  // Mutations dropped so far because they did not compile for a target.
  size_t dropped_uncompilable() const;
  // Candidates in all (bases included) before deduplication and compile checks.
  size_t total() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The first `max_count` candidates of CandidateGenerator(bases, seed, targets).
std::vector<Candidate> generate_candidates(const std::vector<BaseFlow>& bases, uint64_t seed,
                                           size_t max_count,
                                           const std::vector<CompileTarget>& targets = {});

// `vortex explore --quick`'s evaluation: quick_options (5 samples per task, 2 for recall) and a
// context of at most 2048 tokens, so that a candidate takes about 20 s on 2 CPU cores once full
// attention's run is cached.
inline constexpr int32_t kExploreQuickContext = 2048;
SubmitOptions explore_quick_options(SubmitOptions o);

// Whether two submissions' parameters describe the same evaluation: equal but for the flow's own
// budget (which differs between candidates by design).
bool same_evaluation(const Json& a, const Json& b);

// How much faster a flow as accurate as a shipped one must be to beat it (a relative gain).
inline constexpr double kMinSpeedupGain = 0.01;

struct ExploreOptions {
  SubmitOptions submit;                    // the evaluation (and machine, card, commit)
  std::vector<std::string> flows;          // the base flows to mutate (page-scoring flows)
  std::vector<std::string> shipped_flows;  // reference flows for the verdict (bases included)
  std::string out_dir = "explore-flows";   // where candidates are written
  uint64_t seed = 1;                       // the mutation order
  int32_t max_submissions = 20;            // verdicts to run (unmodified bases included)
};

struct ExploreCallbacks {
  // Before and after a verdict (index from 1, out of max_submissions).
  std::function<void(int index, int total, const Candidate&)> started;
  std::function<void(int index, int total, const Candidate&, const Submission&)> finished;
  // A candidate the store already has with these parameters (not counted).
  std::function<void(const Candidate&, const Submission& earlier)> skipped;
  // The stages' progress during a verdict.
  SubmitProgress stage;
};

struct ExploreResult {
  Json parameters;                       // the evaluation parameters (without the budget)
  std::vector<Submission> comparable;    // every stored submission with them, id order
  std::vector<bool> from_this_run;       // per comparable
  std::vector<bool> shipped;             // per comparable: its source is a shipped flow's
  std::vector<size_t> frontier;          // pareto_front(comparable, kSpeedup)
  std::vector<size_t> shipped_frontier;  // the frontier of the shipped submissions alone
  // Frontier submissions that are not shipped flows and beat a point of the shipped frontier (at
  // least as accurate and as fast, and more accurate or kMinSpeedupGain faster): (index of the
  // better one, index of the shipped one it beats), both into comparable.
  std::vector<std::pair<size_t, size_t>> beats;
  std::vector<int64_t> submitted_ids;  // this run's, in order
  std::vector<Candidate> submitted;    // the candidates behind them
  std::vector<int64_t> skipped_ids;    // earlier submissions that candidates matched
  size_t dropped_uncompilable = 0;
  bool exhausted = false;  // the generator ran out before max_submissions
};

// Runs the search: submits up to max_submissions candidates (those the store already has with
// these parameters are skipped and not counted) and adds each verdict to `store`. Throws
// vortex::Error for bad options (a base flow that cannot be read or compiled, an output directory
// that cannot be written, unknown tasks, a missing model).
ExploreResult run_explore(const ExploreOptions& options, ResultsStore& store,
                          const ExploreCallbacks& callbacks = {});

// The ranking part of run_explore, exposed for tests: keeps the `stored` submissions judged with
// result.parameters (comparable), marks those in result.submitted_ids and those whose source is
// one of `shipped_sources`, and computes both frontiers and what beat the shipped flows.
void rank_explored(ExploreResult& result, std::vector<Submission> stored,
                   const std::vector<std::string>& shipped_sources);

// One progress line's verdict: "accepted, acc 0.950 (-0.010), ~4.10x est" or
// "rejected at accuracy, acc 0.910 (-0.078)" or "rejected at verify: <reason>".
std::string verdict_summary(const Submission& s);

// The frontier as a table, marking this run's and the shipped flows' submissions, then whether
// anything beat the shipped flows.
std::string explore_report_text(const ExploreResult& result);

// {"parameters", "submitted": [ids], "skipped": [ids], "frontier": [{id, name, accuracy,
// full_accuracy, speedup, speedup_estimated, from_this_run, shipped}], "beats_shipped": bool,
// "beats": [{id, name, beats_id, beats_name}], "exhausted", "dropped_uncompilable"}.
Json explore_report_json(const ExploreResult& result);

}  // namespace vortex::agent
