// `vortex`: the single entry point. Errors a user can cause print one line and exit 1 (bad input)
// or 2 (bad usage); nothing a user types should crash the process.
#include <cstdio>
#include <exception>
#include <map>
#include <string>

#include "cli/commands.h"
#include "cli/version.h"
#include "core/error.h"
#include "kernels/cpu/cpu_isa.h"

int main(int argc, char** argv) {
  CLI::App app{"Vortex: an LLM serving engine with programmable sparse attention", "vortex"};
  app.require_subcommand(1);
  app.set_version_flag("--version", vortex::cli::version_text);
  std::map<const CLI::App*, vortex::cli::Action> actions;
  auto add = [&](vortex::cli::Action (*fn)(CLI::App&)) {
    vortex::cli::Action act = fn(app);
    actions[app.get_subcommands({}).back()] = std::move(act);
  };
  add(vortex::cli::add_generate_command);
  add(vortex::cli::add_tokenize_command);
  add(vortex::cli::add_bench_command);
  add(vortex::cli::add_bench_serve_command);
  add(vortex::cli::add_check_command);
  add(vortex::cli::add_eval_command);
  add(vortex::cli::add_info_command);
  add(vortex::cli::add_serve_command);
  add(vortex::cli::add_leaderboard_command);
  add(vortex::cli::add_submit_command);
  add(vortex::cli::add_explore_command);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : static_cast<int>(vortex::ExitCode::kUsage);
  }
  try {
    vortex::cpu::active_cpu_isa();  // a bad VORTEX_CPU_ISA stops every command before it starts
    for (CLI::App* sub : app.get_subcommands()) return actions.at(sub)();
    return 0;
  } catch (const vortex::Error& e) {
    std::fprintf(stderr, "vortex: error: %s\n", e.what());
    return e.exit_code();
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "vortex: error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vortex: error: %s\n", e.what());
    return 1;
  }
}
