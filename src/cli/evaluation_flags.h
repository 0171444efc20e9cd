// The evaluation flags `vortex submit` and `vortex explore` share: the suite (model, tasks,
// context, samples, page size, device), the gates, and the throughput workload. One
// registration and one validation, so both commands judge a flow alike and refuse the same
// values with the same message.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>

#include "agent/submit_pipeline.h"

namespace vortex::cli {

struct EvaluationFlags {
  agent::SubmitOptions options;
  std::string tasks = "niah_single,niah_multikey,niah_multivalue,vt";
  std::string device = "cpu";
  bool measure = false, estimate = false;
  std::string natural_model = "auto";  // "auto": models/natural when it exists; "none"
  std::string natural_data;
  CLI::Option* context_opt = nullptr;  // whether --context was given
};

// CLI11's check for a seed: digits only (CLI11 would wrap "-3" into a huge unsigned value).
const CLI::Validator& non_negative_integer();

// Registers --model, --tasks, --context, --samples, `seed_flag` (the samples' seed), --page-size,
// --device, --min-recall, --max-mean-drop, --max-task-drop, --measure, --estimate, the
// --workload-* flags, --server and the natural model's perplexity flags (--natural-*,
// --max-perplexity-increase).
void add_evaluation_flags(CLI::App* cmd, EvaluationFlags& flags, const std::string& seed_flag);

// Checks every value (usage errors name the flag) and returns the options: the task list
// expanded, the device, whether throughput is measured (the default with --device cuda), this
// binary's path for the measurement, and the machine and build the verdicts record.
agent::SubmitOptions evaluation_options(const EvaluationFlags& flags);

}  // namespace vortex::cli
