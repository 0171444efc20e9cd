#include "cli/engine_flags.h"

#include <algorithm>
#include <cmath>

#include "cli/scheduling_flags.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "flow/codegen/cuda_codegen.h"

namespace vortex::cli {
namespace {

constexpr const char* kTuning = "GPU tuning";

void add_runner_flags(CLI::App* cmd, EngineFlags& f) {
  auto opt = [&](const char* name, auto& value, const char* help) {
    cmd->add_option(name, value, help)->capture_default_str()->group(kTuning);
  };
  opt("--cuda-graphs", f.cuda_graphs, "on: decode steps replay CUDA graphs; off: run eagerly");
  opt("--decode-splits", f.decode_splits,
      "Split dense decode attention this many ways over each row's tokens (0 = chosen per step)");
  opt("--sparse-splits", f.sparse_splits, "The same for the rows of sparse layers (0 = chosen)");
  opt("--decode-kernel", f.decode_kernel,
      "Decode attention kernel: mma3 or mma4 (tensor cores, 3 or 4 pipeline stages) or scalar");
  opt("--gemm", f.gemm,
      "Projection GEMMs: cublas, or skinny (a weight-streaming kernel for "
      "decode-sized batches)");
  opt("--flow-summarize", f.flow_summarize,
      "When flows compute page Fields: auto (once after the last layer where exact) or layer "
      "(after each layer's KV append)");
  opt("--flow-select", f.flow_select,
      "Flows' score and select: auto, fused (one kernel) or separate (two)");
  opt("--flow-score-blocks", f.flow_score_blocks,
      "Blocks per SM of the flows' per-page score kernel, 1..64 (0 = 12)");
  opt("--flow-score-lanes", f.flow_score_lanes,
      "Lanes per page of the flows' generated score kernel: auto, thread, 2, 4, 8, 16 or 32");
  opt("--profile-every", f.profile_every,
      "With flows: time the parts of every Nth decode graph step (0 = never)");
  opt("--profile-step", f.profile_step,
      "Wrap step N (from 0) in cudaProfilerStart/Stop for Nsight's --capture-range "
      "cudaProfilerApi (-1 = none)");
}

// One of `names` (matched exactly), as its index; a usage error naming the flag otherwise.
size_t choice(const char* flag, const std::string& value,
              std::initializer_list<const char*> names) {
  size_t i = 0;
  std::string list;
  for (const char* n : names) {
    if (value == n) return i;
    list += (i == 0 ? "" : i + 1 == names.size() ? " or " : ", ") + std::string(n);
    ++i;
  }
  fail_usage(flag, " must be ", list, ", got '", value, "'");
}

RunnerOptions runner_options_from_flags(const EngineFlags& f) {
  RunnerOptions r;
  r.cuda_graphs = choice("--cuda-graphs", f.cuda_graphs, {"on", "off"}) == 0;
  if (f.decode_splits < 0 || f.decode_splits > 64)
    fail_usage("--decode-splits must be in 0..64 (0 = chosen per step), got ", f.decode_splits);
  if (f.sparse_splits < 0 || f.sparse_splits > 64)
    fail_usage("--sparse-splits must be in 0..64 (0 = chosen per step), got ", f.sparse_splits);
  r.decode_splits = f.decode_splits;
  r.sparse_splits = f.sparse_splits;
  r.decode_kernel = static_cast<RunnerOptions::DecodeKernel>(
      choice("--decode-kernel", f.decode_kernel, {"mma3", "mma4", "scalar"}));
  r.gemm = static_cast<RunnerOptions::Gemm>(choice("--gemm", f.gemm, {"cublas", "skinny"}));
  r.summarize = static_cast<RunnerOptions::Summarize>(
      choice("--flow-summarize", f.flow_summarize, {"auto", "layer"}));
  r.score_select = static_cast<RunnerOptions::ScoreSelect>(
      choice("--flow-select", f.flow_select, {"auto", "fused", "separate"}));
  if (f.flow_score_blocks < 0 || f.flow_score_blocks > 64)
    fail_usage("--flow-score-blocks must be in 0..64 (0 = 12), got ", f.flow_score_blocks);
  r.score_blocks_per_sm = f.flow_score_blocks;
  try {
    r.flow_score_lanes = flow::parse_score_lanes(f.flow_score_lanes);
  } catch (const Error& e) {
    fail_usage("--flow-score-lanes ", e.what());
  }
  if (f.profile_every < 0) fail_usage("--profile-every must be >= 0, got ", f.profile_every);
  if (f.profile_step < -1) fail_usage("--profile-step must be >= -1, got ", f.profile_step);
  r.profile_every = f.profile_every;
  r.profile_step = f.profile_step;
  return r;
}

}  // namespace

void add_engine_flags(CLI::App* cmd, EngineFlags& f, const EngineFlagSet& set) {
  f.max_step_tokens = set.default_max_step_tokens;
  cmd->add_option("--device", f.device, "cpu or cuda")->capture_default_str();
  cmd->add_option("--page-size", f.page_size, "KV cache page size in tokens (power of two)")
      ->capture_default_str();
  if (set.kv_cache) {
    cmd->add_option("--kv-pages", f.kv_pages, "KV cache pages (0 = from --kv-memory-gb)")
        ->capture_default_str();
    cmd->add_option("--kv-memory-gb", f.kv_memory_gb, "KV cache budget when --kv-pages is 0")
        ->capture_default_str();
  }
  if (set.max_batch) {
    cmd->add_option("--max-batch", f.max_batch, "Requests running at once")->capture_default_str();
  }
  f.max_step_tokens_opt =
      cmd->add_option("--max-step-tokens", f.max_step_tokens,
                      "Tokens computed per step (prefill chunk budget; at least the batch)")
          ->capture_default_str();
  add_prefill_first_flag(cmd, f.prefill_first);
  cmd->add_flag("--no-prefix-cache", f.no_prefix_cache,
                "Compute every prompt in full: do not share the KV pages of prompt prefixes "
                "between requests");
  cmd->add_option("--threads", f.threads, "CPU threads (0 = all cores)")->capture_default_str();
  add_runner_flags(cmd, f);
}

EngineOptions engine_options_from_flags(const EngineFlags& f, const EngineFlagSet& set) {
  EngineOptions eo;
  eo.device = parse_device(f.device);
  if (f.page_size <= 0 || (f.page_size & (f.page_size - 1)) != 0) {
    fail_usage("--page-size must be a power of two, got ", f.page_size);
  }
  if (set.kv_cache) {
    if (f.kv_pages < 0) fail_usage("--kv-pages must be >= 0 (0 = from --kv-memory-gb)");
    if (!(f.kv_memory_gb > 0) || !std::isfinite(f.kv_memory_gb) || f.kv_memory_gb > 1e6) {
      fail_usage("--kv-memory-gb must be positive (and at most 1e6), got ", f.kv_memory_gb);
    }
  }
  if (f.max_batch < 1) fail_usage(set.max_batch_flag, " must be at least 1, got ", f.max_batch);
  if (f.max_step_tokens < 1) {
    fail_usage("--max-step-tokens must be at least 1, got ", f.max_step_tokens);
  }
  const bool step_given = f.max_step_tokens_opt && f.max_step_tokens_opt->count() > 0;
  if (step_given && f.max_step_tokens < f.max_batch) {
    fail_usage("--max-step-tokens (", f.max_step_tokens, ") must be at least ", set.max_batch_flag,
               " (", f.max_batch, "): every running request needs its decode token each step");
  }
  if (f.threads < 0) fail_usage("--threads must be >= 0 (0 = all cores), got ", f.threads);
  if (f.threads > 0) ThreadPool::set_global_threads(f.threads);

  eo.page_size = f.page_size;
  if (set.kv_cache) {
    eo.num_pages = f.kv_pages;
    eo.kv_memory_bytes = static_cast<size_t>(f.kv_memory_gb * static_cast<double>(1 << 30));
  }
  eo.max_batch = f.max_batch;
  eo.max_step_tokens = std::max(f.max_step_tokens, f.max_batch);
  eo.prefill_first = f.prefill_first;
  eo.prefix_cache = !f.no_prefix_cache;
  eo.runner = runner_options_from_flags(f);
  return eo;
}

}  // namespace vortex::cli
