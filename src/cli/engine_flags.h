// The flags that size, schedule and tune the engine, shared by generate, bench, eval and serve:
// --device, --page-size, --kv-pages, --kv-memory-gb, --max-batch, --max-step-tokens,
// --prefill-first, --threads, and the runner's tuning switches (engine/runner_options.h: CUDA
// graphs, attention splits and kernels, GEMM, the flows' kernel forms, profiling), listed under
// "GPU tuning" in --help. One registration and one validation, so every command accepts the
// same values and refuses the same ones with the same message.
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
  // RunnerOptions, as typed.
  std::string cuda_graphs = "on";
  int32_t decode_splits = 0, sparse_splits = 0;
  std::string decode_kernel = "mma3";
  std::string gemm = "cublas";
  std::string flow_summarize = "auto";
  std::string flow_select = "auto";
  int32_t flow_score_blocks = 0;
  std::string flow_score_lanes = "auto";
  int32_t profile_every = 32;
  int64_t profile_step = -1;
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
