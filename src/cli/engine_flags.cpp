#include "cli/engine_flags.h"

#include <algorithm>
#include <cmath>

#include "cli/scheduling_flags.h"
#include "core/error.h"
#include "core/thread_pool.h"

namespace vortex::cli {

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
  eo.max_running = f.max_batch;
  eo.max_step_tokens = std::max(f.max_step_tokens, f.max_batch);
  eo.prefill_first = f.prefill_first;
  eo.prefix_cache = !f.no_prefix_cache;
  return eo;
}

}  // namespace vortex::cli
