// One submission of a flow to the agent loop (`vortex submit`): the flow, the parameters it was
// judged with, each stage's result and figures, the verdict, and where it ran. The results store
// (results_store.h) keeps every submission; the leaderboard (leaderboard.h) ranks them.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "core/json_file.h"

namespace vortex::agent {

// The stages of a verdict, cheapest first (a verdict stops at the first that fails).
inline constexpr const char* kStageVerify = "verify";
inline constexpr const char* kStageRecall = "recall";
inline constexpr const char* kStageAccuracy = "accuracy";
inline constexpr const char* kStageThroughput = "throughput";

enum class StageStatus { kPassed, kFailed, kSkipped };
const char* stage_status_name(StageStatus s);             // "passed", "failed", "skipped"
StageStatus parse_stage_status(const std::string& name);  // throws vortex::Error if unknown

struct StageResult {
  std::string stage;  // one of kStage*
  StageStatus status = StageStatus::kSkipped;
  double seconds = 0;
  // Why it failed or was skipped, located where it can be ("flows/x.py:12:5: ..."); "" if passed.
  std::string reason;
  Json figures = Json::object();  // the stage's numbers (see docs/AGENTS.md for each stage's)
};

inline constexpr double kNotMeasured = std::numeric_limits<double>::quiet_NaN();

struct Submission {
  int64_t id = 0;                    // the store's (1, 2, ...); 0 before it is stored
  std::string created_at;            // UTC, ISO 8601 ("2026-12-07T15:04:05Z")
  std::string name;                  // the flow's name: its file name without .py
  std::string path;                  // the path it was submitted from
  std::string source;                // the flow's source text
  std::string source_hash;           // source_hash(source)
  Json parameters = Json::object();  // what it was judged with: model, context, samples, budget...
  std::vector<StageResult> stages;   // in the order they ran
  bool accepted = false;             // every stage that ran passed
  std::string failed_stage;          // the stage that failed ("" when accepted)
  // Headline figures, NaN where the verdict did not get that far.
  double accuracy = kNotMeasured;          // the flow's mean accuracy over the suite's tasks
  double full_accuracy = kNotMeasured;     // full attention's on the same samples
  double recall = kNotMeasured;            // mean attention recall over layers and decode steps
  double speedup = kNotMeasured;           // decode speed-up over full attention
  bool speedup_estimated = false;          // from bytes (no GPU), not measured
  double kv_read_fraction = kNotMeasured;  // KV pages read / what full attention reads
  std::string machine;                     // CPU model and cores
  std::string card;                        // GPU name, "" without one
  std::string commit;                      // the vortex build's version and commit

  // accuracy - full_accuracy (NaN if either is missing).
  double accuracy_delta() const;
};

// 16 hex digits: FNV-1a 64 of the source's bytes. Identical sources hash alike (the store also
// compares the text, so a collision cannot merge two flows).
std::string source_hash(const std::string& source);

// Round trip through JSON (the `--json` output and the store's stage column). NaN figures are
// null in JSON.
Json to_json(const StageResult& s);
StageResult stage_from_json(const Json& j);
Json to_json(const Submission& s);
Submission submission_from_json(const Json& j);

}  // namespace vortex::agent
