// The `vortex` subcommands. Each registers its flags on the CLI11 app and returns the action to
// run after parsing; the action returns the process exit code.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace vortex::cli {

using Action = std::function<int()>;

Action add_generate_command(CLI::App& app);
Action add_tokenize_command(CLI::App& app);
Action add_bench_command(CLI::App& app);
Action add_bench_serve_command(CLI::App& app);
Action add_check_command(CLI::App& app);
Action add_eval_command(CLI::App& app);
Action add_info_command(CLI::App& app);
Action add_serve_command(CLI::App& app);
Action add_leaderboard_command(CLI::App& app);
Action add_submit_command(CLI::App& app);
Action add_explore_command(CLI::App& app);

}  // namespace vortex::cli
