// The flags that size and schedule the engine, shared by generate, bench, eval and serve:
// --device, --page-size, --kv-pages, --kv-memory-gb, --max-batch, --max-step-tokens,
// --prefill-first and --threads. One registration and one validation, so every command accepts
// the same values and refuses the same ones with the same message.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>

#include "engine/engine.h"

namespace vortex::cli {

struct EngineFlags {
  std::string device = "cpu";
  int32_t page_size = 16;
  int32_t kv_pages = 0;  // 0: from kv_memory_gb
  double kv_memory_gb = 1.0;
  int32_t max_batch = 64;
  int32_t max_step_tokens = 512;
  bool prefill_first = false;
  bool no_prefix_cache = false;
  int32_t threads = 0;  // 0: all cores
  // Set by add_engine_flags: whether the user gave --max-step-tokens.
  CLI::Option* max_step_tokens_opt = nullptr;
};

// What a command registers. `bench` sizes the cache and the batch from its workload, so it
// leaves out the KV and batch flags (its --batch is the batch; see max_batch_flag).
struct EngineFlagSet {
  bool kv_cache = true;   // --kv-pages, --kv-memory-gb
  bool max_batch = true;  // --max-batch
  // The flag the max-batch value comes from, for messages ("--batch" in bench).
  std::string max_batch_flag = "--max-batch";
  int32_t default_max_step_tokens = 512;
};

// Registers the flags of `set` on `cmd`, with `flags` holding their defaults.
void add_engine_flags(CLI::App* cmd, EngineFlags& flags, const EngineFlagSet& set = {});

// Checks every value (usage errors name the flag), applies --threads to the global thread pool,
// and returns the engine options (no flow: the caller sets EngineOptions::sparse). An explicit
// --max-step-tokens below the batch limit is an error (every running request needs its decode
// token each step); the default is raised to the batch limit instead.
EngineOptions engine_options_from_flags(const EngineFlags& flags, const EngineFlagSet& set = {});

}  // namespace vortex::cli
