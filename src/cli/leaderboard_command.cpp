// `vortex leaderboard`: every submission in the results store (`vortex submit` writes it) as a
// table or JSON, the Pareto frontiers of accuracy against decode speed-up and against KV read,
// and optionally a scatter plot of them as SVG. It only reads the store: a missing file is an
// error, never an empty database created by looking.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "agent/leaderboard.h"
#include "agent/results_store.h"
#include "cli/commands.h"
#include "core/error.h"

namespace vortex::cli {

namespace {

struct LeaderboardArgs {
  std::string db;
  bool json = false;
  std::string svg;
  std::string x = "speedup";
};

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) fail(path, ": cannot write the SVG: ", std::strerror(errno));
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  out.close();
  if (!out) fail(path, ": cannot write the SVG: ", std::strerror(errno));
}

}  // namespace

Action add_leaderboard_command(CLI::App& app) {
  auto args = std::make_shared<LeaderboardArgs>();
  CLI::App* cmd = app.add_subcommand(
      "leaderboard",
      "Rank the submitted flows: a table of every submission and its verdict, and the Pareto "
      "frontiers of accuracy vs decode speed-up and vs KV read");
  cmd->add_option("--db", args->db,
                  "Results database that vortex submit writes (default: $VORTEX_RESULTS_DB, else "
                  "vortex-results.db in the current directory); only read, never created")
      ->type_name("FILE");
  cmd->add_flag("--json", args->json,
                "Print one JSON object instead of the table: every submission (without its "
                "source) with on_frontier_speedup / on_frontier_kv_read, and both frontiers' ids");
  cmd->add_option("--svg", args->svg,
                  "Also write a scatter plot of accuracy against the --x axis to this SVG file "
                  "(accepted filled, rejected hollow, the frontier as a step line)")
      ->type_name("FILE");
  cmd->add_option("--x", args->x,
                  "The SVG's cost axis: speedup (decode speed-up over full attention, higher is "
                  "better; default) or kv-read (fraction of full attention's KV read, lower is "
                  "better)")
      ->check(CLI::IsMember({"speedup", "kv-read"}));
  return [args]() {
    const std::string path = args->db.empty() ? agent::ResultsStore::default_path() : args->db;
    std::error_code ec;
    if (!std::filesystem::exists(path, ec))
      fail("no submissions yet: ", path, " does not exist; run vortex submit FLOW.py");
    const agent::ResultsStore store(path, agent::ResultsStore::Mode::kReadOnly);
    const std::vector<agent::Submission> subs = store.all();
    if (args->json)
      std::printf("%s\n", agent::leaderboard_json(subs)
                              .dump(-1, ' ', false, Json::error_handler_t::replace)
                              .c_str());
    else
      std::fputs(agent::leaderboard_text(subs).c_str(), stdout);
    if (!args->svg.empty()) {
      const agent::CostAxis axis =
          args->x == "kv-read" ? agent::CostAxis::kKvRead : agent::CostAxis::kSpeedup;
      write_file(args->svg, agent::leaderboard_svg(subs, axis));
      // Stdout stays one JSON object with --json.
      std::fprintf(args->json ? stderr : stdout, "wrote %s\n", args->svg.c_str());
    }
    return 0;
  };
}

}  // namespace vortex::cli
