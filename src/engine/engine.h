// The serving loop: requests come in (at any step), the scheduler batches them continuously,
// the model runner computes each step, tokens are sampled per request, and requests finish on
// eos, a stop string or their token limit. Results are exact regardless of batch composition:
// a request gets the same tokens alone or among others (greedy), also after preemption.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "core/device.h"
#include "engine/loaded_model.h"
#include "engine/model_runner.h"
#include "engine/request.h"
#include "engine/sampler.h"
#include "engine/scheduler.h"
#include "flow/budget_planner.h"
#include "kv/page_pool.h"
#include "kv/prefix_cache.h"

namespace vortex {

struct GenerationParams {
  int32_t max_tokens = 128;
  SamplingParams sampling;
  std::vector<std::string> stop;  // stop strings (need a tokenizer); not part of the text
  bool ignore_eos = false;
  // Also report this many most likely tokens of each step, with their logprobs (0 to
  // kMaxTopLogprobs).
  int32_t top_logprobs = 0;
  // Sparse attention for this request: the name of a flow the engine loaded ("" = the engine's
  // default flow, or dense when it has none; "dense" = full attention), and overrides of that
  // flow's budget policy.
  std::string flow;
  flow::BudgetOverrides budget;
  // Teacher forcing: when not empty, the request "generates" exactly these tokens, one per
  // decode step as sampling would, and each token's logprob is the model's for it (the
  // unscaled distribution) — the per-token likelihood of a given continuation under the
  // request's attention (a flow's page selection included). max_tokens, EOS and stop strings
  // do not end it. Needs a runner that supports it (ModelRunner::supports_forced_tokens).
  std::vector<int32_t> forced_tokens;
};

// kAbort: ended early by Engine::abort (a cancelled client, a deadline, a shutdown).
enum class FinishReason { kStop, kLength, kAbort };
const char* finish_reason_name(FinishReason r);  // "stop", "length" (as OpenAI's API), "abort"

struct GenerationResult {
  int64_t id = 0;
  int32_t prompt_tokens = 0;
  std::vector<int32_t> token_ids;  // generated, including a final eos if one stopped it
  std::vector<double> logprobs;    // one per generated token, unscaled distribution
  // With GenerationParams::top_logprobs > 0: one list per generated token (TokenEvent's
  // top_logprobs); empty otherwise.
  std::vector<std::vector<TokenLogprob>> top_logprobs;
  std::string text;  // decoded without special tokens; empty without tokenizer
  FinishReason finish_reason = FinishReason::kLength;
  int32_t num_preemptions = 0;
};

// What a request's token callback hears: each sampled token with the text that became final
// with it (whole UTF-8 characters; held back while a stop string may still match), and at the
// end, once more with token -1 for the text held back until then (when there is any).
struct TokenEvent {
  int64_t id = 0;
  int32_t token = -1;
  double logprob = 0;                      // of token, unscaled distribution (0 for -1)
  std::vector<TokenLogprob> top_logprobs;  // GenerationParams::top_logprobs of them, or empty
  std::string text;
};
using TokenCallback = std::function<void(TokenEvent&&)>;

struct EngineOptions {
  Device device = Device::kCpu;
  int32_t page_size = 16;
  int32_t num_pages = 0;                     // 0: from kv_memory_bytes
  size_t kv_memory_bytes = size_t{1} << 30;  // KV cache budget when num_pages is 0
  int32_t max_batch = 64;                    // at most max_step_tokens
  int32_t max_step_tokens = 512;             // chunked-prefill budget per step
  // Steps that can prefill carry only prefill work, and decodes run in lockstep after it
  // (SchedulerLimits::prefill_first); false: decodes first, prefill chunks fill the rest.
  bool prefill_first = false;
  // Sparse decode attention by a flow, for the requests that name none (GenerationParams::flow
  // ""); null = those run dense.
  std::shared_ptr<const SparseAttentionConfig> sparse;
  // More flows requests may name, beside `sparse` (names: Engine::flow_names). The CPU runner
  // runs any number of flows side by side in one batch; the CUDA runner one per engine for now.
  std::vector<std::shared_ptr<const SparseAttentionConfig>> more_flows;
  // Full KV pages of prompts stay cached after their requests and are shared with later requests
  // whose prompts start with the same tokens (kv/prefix_cache.h); false: every prompt is computed.
  bool prefix_cache = true;
  // The runner's tuning switches (engine/runner_options.h).
  RunnerOptions runner;
};

struct EngineStats {
  int64_t steps = 0;
  int64_t prefill_tokens = 0;  // tokens computed in prefill chunks (recompute included)
  int64_t decode_tokens = 0;   // tokens computed one per request per step
  int64_t preemptions = 0;
  double forward_seconds = 0;
  double wall_seconds = 0;  // time inside step(), without diagnostics
  double diagnostic_seconds = 0;
};

// What the last step() computed, for benchmarks.
struct StepInfo {
  int32_t prefill_tokens = 0;
  int32_t decode_tokens = 0;      // one per decoding request
  int64_t decode_kv_tokens = 0;   // sum of the decoding requests' context lengths (KV read)
  double seconds = 0;             // serving time, without diagnostics
  double diagnostic_seconds = 0;  // measuring attention recall (--record-recall)
};

class Engine {
 public:
  Engine(const LoadedModel& model, const EngineOptions& options);
  ~Engine();

  // Throws vortex::Error naming the field unless the request can run here: token ids in the
  // vocabulary, room in the context and in the whole KV cache, max_tokens >= 1, valid sampling,
  // stop strings only with a tokenizer, top_logprobs in [0, kMaxTopLogprobs], a flow this engine
  // runs ("" for the default, "dense", or the name of a loaded flow) and budget overrides only
  // for a sparse flow, on a runner that supports them, never dense_layers (which layers are
  // sparse is the flow's), and consistent with the flow's policy (floor <= cap). Reads only the
  // model and the options: safe to call from any thread while another steps the engine.
  void validate_request(const std::vector<int32_t>& prompt, const GenerationParams& params) const;
  // Validates (as above) and queues the request. Returns its id. on_token, when set, hears the
  // request's tokens (TokenEvent) during step() and abort().
  int64_t add_request(std::vector<int32_t> prompt, const GenerationParams& params,
                      TokenCallback on_token = {});
  // Ends a waiting or running request now (finish_reason kAbort): its pages go back to the pool
  // and the runner forgets it; its callback hears only the end-of-text flush. nullopt for an
  // unknown or finished id. Call between steps.
  std::optional<GenerationResult> abort(int64_t id);

  bool has_unfinished() const;
  // Runs one step and returns the requests that finished in it.
  std::vector<GenerationResult> step();
  // Steps until every queued request is done; results ordered by id.
  std::vector<GenerationResult> run_to_completion();

  // The name requests use for the engine's default flow (the file stem of its path,
  // "block_topk" for flows/block_topk.py); "" when requests that name none run dense.
  const std::string& flow_name() const { return flow_name_; }
  // Every flow requests may name: the default one first (when there is one), then more_flows,
  // then those added while serving (less the removed ones). Thread-safe.
  std::vector<std::string> flow_names() const;
  // Flows added and removed while serving (call between steps, from the thread that steps).
  // add_flow: requests may name `name` from now on; throws vortex::Error for a name that is
  // taken, empty, "dense" or not [A-Za-z0-9_.-]{1,64}, and where the runner cannot add flows.
  // remove_flow: new requests may no longer name it; requests running it finish with it, then
  // its memory is released. The default flow cannot be removed. Throws for an unknown name.
  void add_flow(std::shared_ptr<const SparseAttentionConfig> flow, const std::string& name);
  void remove_flow(const std::string& name);
  // A copy of the statistics of the flow requests name `name` (from the thread that steps);
  // throws vortex::Error for "dense", "" or a name no loaded flow has.
  SparseStats flow_stats(const std::string& name);
  const LoadedModel& model() const { return model_; }
  const EngineOptions& options() const { return options_; }
  int32_t num_running() const { return static_cast<int32_t>(scheduler_.running().size()); }
  int32_t num_waiting() const { return static_cast<int32_t>(scheduler_.num_waiting()); }
  // KV pages held by requests (pages only the prefix cache holds are not counted).
  int32_t pages_used() const {
    return pool_.num_pages() - pool_.num_free() - pool_.num_cached_only();
  }
  // Pages the prefix cache holds (some may be in use by requests too); null without a cache.
  const PrefixCache* prefix_cache() const { return prefix_cache_.get(); }

  const EngineStats& stats() const { return stats_; }
  const StepInfo& last_step() const { return last_step_; }
  ModelRunner& runner() { return *runner_; }
  const PagePool& page_pool() const { return pool_; }
  int32_t num_pages() const { return pool_.num_pages(); }

 private:
  struct Active;
  bool accept_token(Active& a, SampledToken&& sampled);
  // Request::flow for GenerationParams::flow; throws naming the loaded flows for an unknown one.
  int32_t flow_index(const std::string& name) const;
  // The request's own budget (null: none asked); throws when it cannot have one.
  std::shared_ptr<const flow::BudgetPolicy> request_budget(
      int32_t flow, const flow::BudgetOverrides& overrides) const;
  GenerationResult finish(Active& a, FinishReason reason);

  const LoadedModel& model_;
  EngineOptions options_;
  // Releases the removed flows no request uses any more (between steps).
  void release_removed_flows();

  std::string flow_name_;
  // The flow table, read by validate_request on other threads: under flows_mu_. Index =
  // Request::flow; a removed flow keeps its slot with an empty name (and a null config once
  // released), so indices never move.
  mutable std::shared_mutex flows_mu_;
  std::vector<std::string> flow_names_;
  std::vector<std::shared_ptr<const SparseAttentionConfig>> flows_;
  std::vector<size_t> removed_;  // removed, still in use by some request
  int32_t num_pages_;
  std::unique_ptr<ModelRunner> runner_;
  PagePool pool_;
  std::unique_ptr<PrefixCache> prefix_cache_;  // its pages live in pool_; null when off
  Scheduler scheduler_;
  std::map<int64_t, std::unique_ptr<Active>> active_;
  std::map<const Request*, Active*> by_request_;
  int64_t next_id_ = 0;
  EngineStats stats_;
  StepInfo last_step_;
};

}  // namespace vortex
