// `vortex explore`: an unattended search over flows with no language model (agent/explore.h):
// mutations of the shipped flows' budgets and templates, each judged by the same staged verdict
// as `vortex submit` and kept in the same results store, then the Pareto frontier it found.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "agent/explore.h"
#include "agent/results_store.h"
#include "agent/submit_pipeline.h"
#include "cli/comma_list.h"
#include "cli/commands.h"
#include "cli/evaluation_flags.h"
#include "cli/version.h"
#include "core/error.h"
#include "eval/tasks/tasks.h"
#include "model/model_config.h"
#include "model/presets.h"

namespace vortex::cli {

namespace {

namespace fs = std::filesystem;

struct ExploreArgs {
  int32_t max_submissions = 20;
  bool quick = false;
  uint64_t seed = 1;
  std::string db;
  std::string out = "explore-flows";
  std::string flows;
  bool json = false;
  EvaluationFlags evaluation;
};

// The shipped flows' directory: ./flows, else the source tree's flows/ beside the build
// directory the binary runs from (build-cpu/vortex -> flows/).
std::string shipped_flows_dir() {
  std::error_code ec;
  if (fs::is_directory("flows", ec)) return "flows";
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const fs::path beside = exe.parent_path().parent_path() / "flows";
    if (fs::is_directory(beside, ec)) return beside.string();
  }
  return "";
}

std::vector<std::string> python_files(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(dir, ec))
    if (e.path().extension() == ".py" && e.is_regular_file(ec)) out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

int run_explore_command(ExploreArgs& a) {
  if (a.max_submissions < 1 || a.max_submissions > 100000)
    fail_usage("--max-submissions must be in [1, 100000], got ", a.max_submissions);
  if (a.out.empty()) fail_usage("--out: give a directory");
  std::error_code ec;
  if (fs::exists(a.out, ec) && !fs::is_directory(a.out, ec))
    fail_usage("--out: ", a.out, " exists and is not a directory");
  agent::SubmitOptions o = evaluation_options(a.evaluation);
  if (a.quick) {
    const int32_t context = o.context;
    o = agent::explore_quick_options(o);
    if (a.evaluation.context_opt->count() > 0) o.context = context;  // an explicit --context wins
  }

  agent::ExploreOptions eo;
  eo.submit = o;
  eo.out_dir = a.out;
  eo.seed = a.seed;
  eo.max_submissions = a.max_submissions;
  const std::string shipped_dir = shipped_flows_dir();
  if (!shipped_dir.empty()) eo.shipped_flows = python_files(shipped_dir);
  FILE* lines = a.json ? stderr : stdout;  // stdout stays one JSON object with --json
  if (!a.flows.empty()) {
    eo.flows = split_comma_list(a.flows);
    if (eo.flows.empty()) fail_usage("--flows: give at least one flow file");
    for (const std::string& f : eo.flows)
      if (!fs::is_regular_file(f, ec)) fail_usage("--flows: ", f, " is not a flow file");
  } else {
    if (shipped_dir.empty())
      fail_usage(
          "--flows: no flows/ directory here (nor beside the vortex binary's build "
          "directory); name the flows to mutate");
    for (const std::string& f : eo.shipped_flows) {
      try {
        if (agent::is_page_scoring_flow(agent::read_base_flow(f))) eo.flows.push_back(f);
      } catch (const Error& e) {
        std::fprintf(stderr, "vortex explore: skipping %s\n", e.what());
      }
    }
    if (eo.flows.empty()) fail("no page-scoring flow in ", shipped_dir, "; name some with --flows");
  }
  // Check the bases and the models before the store is created.
  agent::read_base_flows(eo.flows);
  load_model_config(o.model);
  if (!preset_config(o.workload_model) && !fs::is_directory(o.workload_model, ec))
    fail_usage("--workload-model '", o.workload_model,
               "' is neither a preset (e.g. qwen3-1.7b) nor a model directory");

  agent::ResultsStore store(a.db.empty() ? agent::ResultsStore::default_path() : a.db);
  std::string names;
  for (const std::string& f : eo.flows)
    names += (names.empty() ? "" : ", ") + fs::path(f).stem().string();
  std::fprintf(lines,
               "vortex explore: mutating %s (seed %llu), up to %d submission%s judged on %s, "
               "context %d, %d sample%s per task; candidates in %s/, verdicts in %s\n",
               names.c_str(), static_cast<unsigned long long>(a.seed), a.max_submissions,
               a.max_submissions == 1 ? "" : "s", o.model.c_str(), o.context, o.samples,
               o.samples == 1 ? "" : "s", a.out.c_str(), store.path().c_str());
  std::fflush(lines);

  const bool tty = isatty(2) != 0;
  std::string current;  // "[3/20] quest__r32_s0" while a verdict runs
  agent::ExploreCallbacks cb;
  cb.started = [&](int index, int total, const agent::Candidate& c) {
    current = str_cat("[", index, "/", total, "] ", c.name);
    if (!tty) return;
    std::fprintf(stderr, "\r\033[K%s ...", current.c_str());
    std::fflush(stderr);
  };
  cb.stage = [&](const std::string& stage, const std::string& message) {
    if (!tty) return;
    std::fprintf(stderr, "\r\033[K%s ... [%s] %s", current.c_str(), stage.c_str(), message.c_str());
    std::fflush(stderr);
  };
  cb.finished = [&](int, int, const agent::Candidate& c, const agent::Submission& s) {
    if (tty) std::fprintf(stderr, "\r\033[K");
    std::fprintf(lines, "%s ... %s\n", current.c_str(), agent::verdict_summary(s).c_str());
    if (!c.is_base()) std::fprintf(lines, "    %s\n", c.description.c_str());
    std::fflush(lines);
  };
  cb.skipped = [&](const agent::Candidate& c, const agent::Submission& earlier) {
    std::fprintf(lines, "skip %s: the store has it with these parameters (#%lld, %s)\n",
                 c.name.c_str(), static_cast<long long>(earlier.id),
                 earlier.accepted ? "accepted" : ("failed at " + earlier.failed_stage).c_str());
    std::fflush(lines);
  };
  const agent::ExploreResult r = agent::run_explore(eo, store, cb);
  if (tty) std::fprintf(stderr, "\r\033[K");
  if (r.dropped_uncompilable > 0)
    std::fprintf(lines, "(%zu mutations that do not compile for the model were not submitted)\n",
                 r.dropped_uncompilable);
  if (a.json) {
    std::printf(
        "%s\n",
        agent::explore_report_json(r).dump(-1, ' ', false, Json::error_handler_t::replace).c_str());
  } else {
    std::printf("\n%s", agent::explore_report_text(r).c_str());
  }
  return 0;
}

}  // namespace

Action add_explore_command(CLI::App& app) {
  auto a = std::make_shared<ExploreArgs>();
  CLI::App* cmd = app.add_subcommand(
      "explore",
      "Search for better flows without a language model: mutate the shipped flows' budgets "
      "(ratio 1/4..1/32, sink 0-2, recent 1-4, dense layers [0], [], [0, 1]) and templates (int8 "
      "against bf16 Fields, max against mean over heads, GROUP, DECAY), write each candidate to "
      "a file and judge it like `vortex submit` into the same results store, then print the "
      "Pareto frontier of accuracy against decode speed-up and whether anything beat the "
      "shipped flows. The unmodified flows go first when the store lacks them; candidates the "
      "store already has with the same evaluation are skipped.");
  cmd->add_option("--max-submissions", a->max_submissions,
                  "How many verdicts to run (the unmodified base flows included; skipped "
                  "candidates do not count)")
      ->capture_default_str();
  cmd->add_flag("--quick", a->quick,
                "Cheaper verdicts: 5 samples per task, 2 for recall, and a context of 2048 "
                "unless --context is given (about 20 s a candidate on 2 CPU cores)");
  cmd->add_option("--seed", a->seed, "Seed of the order in which mutations are tried")
      ->check(non_negative_integer())
      ->capture_default_str();
  cmd->add_option("--db", a->db,
                  "The results store (SQLite; default $VORTEX_RESULTS_DB, else "
                  "./vortex-results.db)");
  cmd->add_option("--out", a->out,
                  "Directory the candidates are written to, as <base>__<mutation tag>.py (a file "
                  "of that name is overwritten)")
      ->capture_default_str();
  cmd->add_option("--flows", a->flows,
                  "The flows to mutate, comma-separated (default: every page-scoring flow in "
                  "flows/)");
  cmd->add_flag("--json", a->json,
                "Print the frontier and the verdict against the shipped flows as one JSON "
                "object (progress goes to standard error)");
  add_evaluation_flags(cmd, a->evaluation, "--sample-seed");
  return [a]() { return run_explore_command(*a); };
}

}  // namespace vortex::cli
