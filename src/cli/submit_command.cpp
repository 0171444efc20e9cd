// `vortex submit FLOW.py`: the agent loop's staged verdict of one flow (agent/submit_pipeline.h),
// kept in the results store (agent/results_store.h) that `vortex leaderboard` ranks.
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "agent/results_store.h"
#include "agent/submit_pipeline.h"
#include "cli/commands.h"
#include "cli/evaluation_flags.h"
#include "cli/sparse_flags.h"
#include "cli/version.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "eval/tasks/tasks.h"

namespace vortex::cli {

namespace {

struct SubmitArgs {
  std::string flow;
  bool json = false;
  bool quick = false;
  std::string db;
  bool no_store = false;
  EvaluationFlags evaluation;
  SparseFlags budget;
};

std::string figure(double v, const char* format = "%.3f") {
  if (!std::isfinite(v)) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

void print_verdict(const agent::Submission& s, const std::vector<agent::Submission>& earlier) {
  std::printf("vortex submit: %s (%s, source %s)\n", s.path.c_str(),
              s.id > 0 ? str_cat("#", s.id).c_str() : "not stored", s.source_hash.c_str());
  for (const agent::Submission& e : earlier) {
    std::printf("  (identical source submitted before as #%lld, %s: %s)\n",
                static_cast<long long>(e.id), e.created_at.c_str(),
                e.accepted ? "accepted" : ("failed at " + e.failed_stage).c_str());
  }
  for (const agent::StageResult& st : s.stages) {
    std::printf("  %-10s %-7s %7.1f s", st.stage.c_str(), agent::stage_status_name(st.status),
                st.seconds);
    const Json& f = st.figures;
    if (st.stage == agent::kStageVerify && st.status == agent::StageStatus::kPassed) {
      std::printf("  fields %s, GPU Field %s B + State %s B per page and KV head",
                  f["fields"].dump().c_str(), f["gpu_field_bytes_per_page_head"].dump().c_str(),
                  f["gpu_state_bytes_per_page_head"].dump().c_str());
    } else if (st.stage == agent::kStageRecall && f.contains("mean")) {
      std::printf("  recall mean %s, p5 %s over %s rows",
                  figure(f["mean"].is_number() ? f["mean"].get<double>() : NAN).c_str(),
                  figure(f["p5"].is_number() ? f["p5"].get<double>() : NAN).c_str(),
                  f["rows"].dump().c_str());
    } else if (st.stage == agent::kStageAccuracy && f.contains("accuracy")) {
      std::printf("  %s vs full %s (%+.3f), KV read %s%s", figure(s.accuracy).c_str(),
                  figure(s.full_accuracy).c_str(), s.accuracy - s.full_accuracy,
                  figure(100 * s.kv_read_fraction, "%.1f%%").c_str(),
                  f.value("full_cached", false) ? ", full attention from the store" : "");
    } else if (st.stage == agent::kStageThroughput && f.contains("speedup") &&
               !f.value("estimate", true)) {
      std::printf(
          "  %.2fx over full attention (MEASURED by vortex bench --compare-full on %s: "
          "%s, step %.2f vs %.2f ms)",
          s.speedup, f["device"].get<std::string>().c_str(),
          f["workload"]["model"].get<std::string>().c_str(), f["step_ms_flow"].get<double>(),
          f["step_ms_full"].get<double>());
    } else if (st.stage == agent::kStageThroughput && f.contains("speedup")) {
      std::printf(
          "  ~%.2fx over full attention (ESTIMATE from bytes on %s: %s, step %.2f vs "
          "%.2f ms, flow overhead %.1f%%)",
          s.speedup, f["card"].get<std::string>().c_str(),
          f["workload"]["model"].get<std::string>().c_str(), f["step_ms_flow"].get<double>(),
          f["step_ms_full"].get<double>(), 100 * f["flow_overhead_share"].get<double>());
    }
    std::printf("\n");
    if (!st.reason.empty()) std::printf("    %s\n", st.reason.c_str());
  }
  if (s.accepted) {
    std::printf("verdict: ACCEPTED\n");
  } else {
    std::printf("verdict: REJECTED at %s\n", s.failed_stage.c_str());
  }
}

int run_submit(SubmitArgs& a) {
  agent::SubmitOptions o = evaluation_options(a.evaluation);
  o.budget = budget_overrides(a.budget);
  if (a.quick) o = agent::quick_options(o);

  std::unique_ptr<agent::ResultsStore> store;
  if (!a.no_store)
    store = std::make_unique<agent::ResultsStore>(a.db.empty() ? agent::ResultsStore::default_path()
                                                               : a.db);
  const bool tty = isatty(2) != 0;
  agent::Submission s = agent::run_submission(
      a.flow, o, store.get(), [&](const std::string& stage, const std::string& message) {
        std::fprintf(stderr, "%s[%s] %s%s", tty ? "\r\033[K" : "", stage.c_str(), message.c_str(),
                     tty ? "" : "\n");
        std::fflush(stderr);
      });
  if (tty) std::fprintf(stderr, "\r\033[K");
  std::vector<agent::Submission> earlier;
  if (store) {
    earlier = store->with_source(s.source);
    store->add(s);
  }
  if (a.json) {
    Json j = agent::to_json(s);
    j.erase("source");
    Json ids = Json::array();
    for (const agent::Submission& e : earlier) ids.push_back(e.id);
    j["identical_to"] = ids;
    j["stored"] = store != nullptr;
    std::printf("%s\n", j.dump().c_str());
  } else {
    print_verdict(s, earlier);
  }
  return s.accepted ? 0 : 3;
}

}  // namespace

Action add_submit_command(CLI::App& app) {
  auto a = std::make_shared<SubmitArgs>();
  CLI::App* cmd = app.add_subcommand(
      "submit",
      "Judge a flow in stages, cheapest first, stopping at the first failure: verify (every "
      "target's rules), attention recall, accuracy against full attention on the synthetic "
      "suite, and the decode speed-up (an estimate from bytes). Every verdict is kept in the "
      "results store for `vortex leaderboard`. Exit code 0 accepted, 3 rejected.");
  cmd->add_option("flow", a->flow, "The flow file (Python syntax, see docs/flows.md)")->required();
  cmd->add_flag("--json", a->json, "Print the verdict as one JSON object");
  cmd->add_flag("--quick", a->quick,
                "Fewer samples (5 per task, 2 for recall): a verdict in about a minute on 2 CPU "
                "cores (at most 3)");
  cmd->add_option("--db", a->db,
                  "The results store (SQLite; default $VORTEX_RESULTS_DB, else "
                  "./vortex-results.db)");
  cmd->add_flag("--no-store", a->no_store, "Do not keep this verdict (nor cache full attention)");

  add_evaluation_flags(cmd, a->evaluation, "--seed");
  add_budget_flags(cmd, a->budget);
  return [a]() { return run_submit(*a); };
}

}  // namespace vortex::cli
