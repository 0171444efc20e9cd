// The engine on its own thread, fed by other threads: the front a server uses. HTTP threads
// submit requests (validated at once, queued for the engine thread), hear each request's tokens
// and its end through a per-request callback, cancel requests whose client went away, and stop
// the loop gracefully. The Engine itself stays single-threaded: only the loop thread touches it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "engine/engine.h"

namespace vortex {

// What one request hears, in order: zero or more kToken events, then exactly one kFinished.
// Delivered on the engine thread: a callback must be quick and must not block (hand the event
// to the waiting HTTP thread through a queue) and must not call back into the loop.
struct RequestEvent {
  enum class Kind { kToken, kFinished };
  Kind kind = Kind::kToken;
  // kToken: the sampled token and the text that became final with it (whole UTF-8 characters;
  // possibly empty while a stop string may still match). token is -1 for text released only at
  // the end. logprob: natural log under the unscaled distribution; top_logprobs: the
  // GenerationParams::top_logprobs most likely tokens of that step, most likely first.
  int32_t token = -1;
  double logprob = 0;
  std::vector<TokenLogprob> top_logprobs;
  std::string text;
  // kFinished: the whole result (finish_reason kStop, kLength or kAbort; result.id is the id
  // submit() returned). abort_reason says why an aborted request ended: "cancelled", "deadline",
  // "shutdown", or "error" when the engine failed (then `error` holds its message, e.g. a device
  // error, and result has what the loop knew: prompt_tokens, no tokens; a server answers 500),
  // or "invalid_request" when the request became invalid after submit() checked it (the flow it
  // names was removed before it was admitted; `error` says so; a server answers 400).
  GenerationResult result;
  std::string abort_reason;
  std::string error;
};

struct LoopRequest {
  std::vector<int32_t> prompt;
  GenerationParams params;
  // When set and passed, the request is aborted (abort_reason "deadline") within one step.
  std::optional<std::chrono::steady_clock::time_point> deadline;
  // May be empty (the request runs unheard). An exception it throws is swallowed and cancels
  // the request (abort_reason "cancelled"): it never reaches the engine.
  std::function<void(RequestEvent&&)> on_event;
};

struct EngineLoopOptions {
  // Requests submitted but not yet running (the loop's intake plus the scheduler's waiting
  // queue). At the limit, submit() throws QueueFullError. At least 1.
  int32_t max_waiting = 256;
};

// submit() when the waiting queue is full: a server answers 503 with Retry-After.
class QueueFullError : public Error {
 public:
  explicit QueueFullError(const std::string& message) : Error(message, ExitCode::kInput) {}
};

// A Prometheus-style histogram: cumulative counts per upper bound (seconds), plus +Inf.
struct LatencyHistogram {
  std::vector<double> bounds;   // ascending
  std::vector<int64_t> counts;  // counts[i]: observations <= bounds[i]; counts.back(): all
  double sum = 0;
  int64_t count = 0;

  explicit LatencyHistogram(std::vector<double> upper_bounds);
  void observe(double seconds);
};

// A snapshot of the loop's counters, taken after each step (metrics() copies it).
struct EngineLoopMetrics {
  int64_t running = 0;            // requests in the running set
  int64_t waiting = 0;            // submitted, not running yet
  int64_t prompt_tokens = 0;      // of the requests admitted so far
  int64_t generation_tokens = 0;  // tokens generated so far
  int64_t requests_finished = 0;
  std::map<std::string, int64_t> finished_by_reason;  // "stop", "length", "abort"
  int64_t preemptions = 0;
  int32_t kv_pages_total = 0;
  int32_t kv_pages_used = 0;         // held by requests
  int32_t kv_pages_cached = 0;       // held only by the prefix cache (evictable, so free to use)
  int64_t prefix_cache_queries = 0;  // prompt pages looked up (0 without a prefix cache)
  int64_t prefix_cache_hits = 0;     // of those, pages found in the cache
  // Requests admitted to the engine, by GenerationParams::flow; "" is counted under the
  // engine's flow name (Engine::flow_name()), or "dense" when it has none.
  std::map<std::string, int64_t> requests_per_flow;
  // Bounds in seconds: kTtftBounds, kInterTokenBounds and kE2eBounds below.
  LatencyHistogram ttft{{}};         // submit to first token
  LatencyHistogram inter_token{{}};  // between consecutive tokens of a request
  LatencyHistogram e2e{{}};          // submit to finish (every finish reason)
};

// The histograms' upper bounds (seconds): from a fast GPU token (a millisecond) to a long
// reasoning trace (minutes), about three per decade.
extern const std::vector<double> kTtftBounds;
extern const std::vector<double> kInterTokenBounds;
extern const std::vector<double> kE2eBounds;

// If Engine::step throws (a vortex::Error such as a device error), every in-flight request ends
// with abort_reason "error" and the message in RequestEvent::error; the engine is not stepped
// again and submit() throws that error from then on (a server reports itself unhealthy).
class EngineLoop {
 public:
  // Takes the engine (its LoadedModel must outlive the loop) and starts the loop thread. Throws
  // vortex::Error for options that cannot work (max_waiting < 1).
  EngineLoop(std::unique_ptr<Engine> engine, const EngineLoopOptions& options);
  // shutdown(/*abort_in_flight=*/true) if still running.
  ~EngineLoop();
  EngineLoop(const EngineLoop&) = delete;
  EngineLoop& operator=(const EngineLoop&) = delete;

  // Thread-safe. Validates the request (the same checks as Engine::add_request: ids in the
  // vocabulary, room in the context, sampling fields) and throws vortex::Error naming the field;
  // throws QueueFullError when max_waiting requests wait, and vortex::Error after shutdown()
  // began. Returns the request's id (unique for the loop's lifetime).
  int64_t submit(LoopRequest request);

  // Thread-safe, idempotent, a no-op for unknown or finished ids. The request ends with
  // finish_reason kAbort (abort_reason "cancelled") and its pages are free within one step.
  void cancel(int64_t id);

  // Thread-safe. Stops accepting; then either lets the in-flight requests finish
  // (abort_in_flight false) or aborts them (abort_reason "shutdown"); returns when every request
  // has heard its kFinished and the loop thread has ended.
  void shutdown(bool abort_in_flight);

  // Thread-safe: a copy of the snapshot taken after the latest step (and when the loop goes
  // idle, so an idle loop reads 0 running and 0 used pages). Still readable after shutdown().
  EngineLoopMetrics metrics() const;
  // Thread-safe: false once shutdown() began or the engine failed (submit() would throw).
  bool accepting() const;
  // The engine's name for its default flow ("" when dense; GenerationParams::flow may name it).
  const std::string& flow_name() const;
  // Every flow GenerationParams::flow may name (Engine::flow_names): a snapshot.
  std::vector<std::string> flow_names() const;
  // Thread-safe: Engine::add_flow / remove_flow, run on the loop thread between two steps; the
  // call returns once it is done and throws what they throw (or vortex::Error once the loop is
  // shutting down or its engine failed). Requests in flight keep the flow they started with.
  void add_flow(std::shared_ptr<const SparseAttentionConfig> flow, const std::string& name);
  void remove_flow(const std::string& name);
  // Thread-safe: Engine::flow_stats, read on the loop thread between two steps.
  SparseStats flow_stats(const std::string& name);
  const LoadedModel& model() const;
  const EngineOptions& engine_options() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vortex
