// The flags that choose how the engine schedules its steps, shared by generate, bench and eval.
#pragma once

#include <CLI/CLI.hpp>

namespace vortex::cli {

// Registers --prefill-first (EngineOptions::prefill_first).
void add_prefill_first_flag(CLI::App* cmd, bool& prefill_first);

}  // namespace vortex::cli
