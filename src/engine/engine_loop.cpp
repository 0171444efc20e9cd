#include "engine/engine_loop.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <future>
#include <mutex>
#include <thread>
#include <tuple>
#include <utility>

namespace vortex {

const std::vector<double> kTtftBounds = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                         1,     2.5,  5,     10,   30,  60,   120};
const std::vector<double> kInterTokenBounds = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                               0.1,   0.25,   0.5,   1,    2.5,   5};
const std::vector<double> kE2eBounds = {0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800};

LatencyHistogram::LatencyHistogram(std::vector<double> upper_bounds)
    : bounds(std::move(upper_bounds)), counts(bounds.size() + 1, 0) {}

void LatencyHistogram::observe(double seconds) {
  // Cumulative buckets: an observation counts in every bucket whose bound it does not exceed.
  for (size_t i = 0; i < bounds.size(); ++i) {
    if (seconds <= bounds[i]) ++counts[i];
  }
  ++counts.back();
  sum += seconds;
  ++count;
}

namespace {

using Clock = std::chrono::steady_clock;

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

}  // namespace

struct EngineLoop::Impl {
  // Runs `change` on the loop thread between two steps and waits for it; refused with "the
  // engine loop is shutting down<refusal>" or "the engine failed<refusal>: ..." when the loop
  // can no longer run it.
  void run_control(const std::string& refusal, std::function<void()> change);
  // A request submitted and not yet given to the engine.
  struct Submitted {
    int64_t id;
    LoopRequest request;
    Clock::time_point submitted;
  };
  // A request the engine holds (loop thread only).
  struct Live {
    LoopRequest request;
    int64_t engine_id = -1;
    int32_t prompt_tokens = 0;
    Clock::time_point submitted;
    std::optional<Clock::time_point> last_token;
  };

  std::unique_ptr<Engine> engine;
  EngineLoopOptions options;
  std::string flow_key;  // requests_per_flow's key for GenerationParams::flow ""

  // Shared with submitting threads, under mu.
  mutable std::mutex mu;
  std::condition_variable wake;
  std::deque<Submitted> intake;
  std::vector<int64_t> cancels;
  // Changes to the engine's flows, run by the loop thread between steps (each sets its promise).
  std::deque<std::function<void()>> controls;
  bool stopping = false;
  bool abort_all = false;
  std::string fatal;  // the engine's error once a step threw
  int64_t next_id = 0;
  int64_t engine_waiting = 0;  // the scheduler's waiting queue as the loop last counted it

  // The loop thread's own state.
  std::map<int64_t, Live> live;        // by loop id
  std::map<int64_t, int64_t> loop_of;  // engine id -> loop id
  std::vector<int64_t> failed_callbacks;
  // Requests that ended in this pass of the loop, with their kFinished event, delivered after
  // the metrics snapshot is published.
  std::vector<std::tuple<int64_t, LoopRequest, RequestEvent>> ended;
  bool engine_dead = false;
  EngineLoopMetrics counters;

  mutable std::mutex metrics_mu;
  EngineLoopMetrics snapshot;

  std::mutex join_mu;
  std::thread thread;

  Impl(std::unique_ptr<Engine> e, const EngineLoopOptions& o) : engine(std::move(e)), options(o) {
    if (!engine) fail("EngineLoop: no engine given");
    if (options.max_waiting < 1) {
      fail_usage("max_waiting must be at least 1, got ", options.max_waiting);
    }
    flow_key = engine->flow_name().empty() ? "dense" : engine->flow_name();
    counters.ttft = LatencyHistogram(kTtftBounds);
    counters.inter_token = LatencyHistogram(kInterTokenBounds);
    counters.e2e = LatencyHistogram(kE2eBounds);
    counters.kv_pages_total = engine->num_pages();
    snapshot = counters;
  }

  void run();
  // One turn of the loop with the engine healthy: admit, cancel, expire, then one step.
  void serve(std::deque<Submitted>&& taken, std::vector<int64_t>&& cancelled, bool abort_in_flight);
  void admit(Submitted&& s, bool shutting_down);
  void on_token(int64_t loop_id, TokenEvent&& e);
  void deliver(int64_t loop_id, const LoopRequest& request, RequestEvent&& event);
  void deliver_ended();
  void finish(int64_t loop_id, GenerationResult&& result, const std::string& abort_reason,
              const std::string& error = "");
  void finish_unadmitted(Submitted&& s, const std::string& abort_reason,
                         const std::string& error = "");
  void abort_live(int64_t loop_id, const std::string& reason);
  void fail_everything(const std::string& error);
  void publish();
};

void EngineLoop::Impl::deliver(int64_t loop_id, const LoopRequest& request, RequestEvent&& event) {
  if (!request.on_event) return;
  try {
    request.on_event(std::move(event));
  } catch (...) {
    // The callback's owner is gone or broken: stop spending the engine on it.
    failed_callbacks.push_back(loop_id);
  }
}

void EngineLoop::Impl::on_token(int64_t loop_id, TokenEvent&& e) {
  auto it = live.find(loop_id);
  if (it == live.end()) return;
  Live& l = it->second;
  if (e.token >= 0) {
    const Clock::time_point now = Clock::now();
    if (l.last_token) {
      counters.inter_token.observe(seconds_between(*l.last_token, now));
    } else {
      counters.ttft.observe(seconds_between(l.submitted, now));
    }
    l.last_token = now;
    ++counters.generation_tokens;
  }
  RequestEvent ev;
  ev.kind = RequestEvent::Kind::kToken;
  ev.token = e.token;
  ev.logprob = e.logprob;
  ev.top_logprobs = std::move(e.top_logprobs);
  ev.text = std::move(e.text);
  deliver(loop_id, l.request, std::move(ev));
}

void EngineLoop::Impl::finish(int64_t loop_id, GenerationResult&& result,
                              const std::string& abort_reason, const std::string& error) {
  auto it = live.find(loop_id);
  VORTEX_ASSERT(it != live.end());
  Live l = std::move(it->second);
  live.erase(it);
  if (l.engine_id >= 0) loop_of.erase(l.engine_id);
  result.id = loop_id;
  counters.e2e.observe(seconds_between(l.submitted, Clock::now()));
  ++counters.requests_finished;
  ++counters.finished_by_reason[finish_reason_name(result.finish_reason)];
  RequestEvent ev;
  ev.kind = RequestEvent::Kind::kFinished;
  ev.result = std::move(result);
  ev.abort_reason = abort_reason;
  ev.error = error;
  // Heard after the next publish(): a client that reads /metrics once its answer is complete
  // then sees its request counted.
  ended.emplace_back(loop_id, std::move(l.request), std::move(ev));
}

void EngineLoop::Impl::deliver_ended() {
  for (auto& [id, request, event] : ended) deliver(id, request, std::move(event));
  ended.clear();
}

void EngineLoop::Impl::finish_unadmitted(Submitted&& s, const std::string& abort_reason,
                                         const std::string& error) {
  Live l;
  l.prompt_tokens = static_cast<int32_t>(s.request.prompt.size());
  l.submitted = s.submitted;
  l.request = std::move(s.request);
  live.emplace(s.id, std::move(l));
  GenerationResult r;
  r.prompt_tokens = live.at(s.id).prompt_tokens;
  r.finish_reason = FinishReason::kAbort;
  finish(s.id, std::move(r), abort_reason, error);
}

void EngineLoop::Impl::admit(Submitted&& s, bool shutting_down) {
  if (shutting_down) return finish_unadmitted(std::move(s), "shutdown");
  if (s.request.deadline && *s.request.deadline <= Clock::now()) {
    return finish_unadmitted(std::move(s), "deadline");
  }
  const int64_t id = s.id;
  Live l;
  l.prompt_tokens = static_cast<int32_t>(s.request.prompt.size());
  l.submitted = s.submitted;
  const std::string& flow = s.request.params.flow;
  const std::string flow_key_of_request = flow.empty() ? flow_key : flow;
  std::vector<int32_t> prompt = std::move(s.request.prompt);
  l.request = std::move(s.request);
  Live& placed = live.emplace(id, std::move(l)).first->second;
  try {
    placed.engine_id =
        engine->add_request(std::move(prompt), placed.request.params,
                            [this, id](TokenEvent&& e) { on_token(id, std::move(e)); });
  } catch (const std::exception& e) {
    // submit() ran the same checks; what changed since is the request's fault when it is a
    // usage error (the flow it names was removed before it was admitted), else the engine's.
    const auto* error = dynamic_cast<const Error*>(&e);
    const bool invalid = error && error->exit_code() == static_cast<int>(ExitCode::kUsage);
    GenerationResult r;
    r.prompt_tokens = placed.prompt_tokens;
    r.finish_reason = FinishReason::kAbort;
    finish(id, std::move(r), invalid ? "invalid_request" : "error", e.what());
    return;
  }
  loop_of[placed.engine_id] = id;
  counters.prompt_tokens += placed.prompt_tokens;
  ++counters.requests_per_flow[flow_key_of_request];
}

void EngineLoop::Impl::abort_live(int64_t loop_id, const std::string& reason) {
  auto it = live.find(loop_id);
  if (it == live.end()) return;  // finished already, or never known
  std::optional<GenerationResult> r = engine->abort(it->second.engine_id);
  VORTEX_ASSERT(r.has_value());
  finish(loop_id, std::move(*r), reason);
}

void EngineLoop::Impl::fail_everything(const std::string& error) {
  engine_dead = true;
  std::deque<Submitted> waiting;
  {
    std::lock_guard<std::mutex> lock(mu);
    fatal = error;
    waiting.swap(intake);
    cancels.clear();
    engine_waiting = 0;
  }
  // The engine's state is unknown after a failed step: it is never touched again, so what the
  // requests generated so far stays with it; each hears the error.
  std::vector<int64_t> ids;
  for (const auto& [id, l] : live) ids.push_back(id);
  for (int64_t id : ids) {
    GenerationResult r;
    r.prompt_tokens = live.at(id).prompt_tokens;
    r.finish_reason = FinishReason::kAbort;
    finish(id, std::move(r), "error", error);
  }
  for (Submitted& s : waiting) finish_unadmitted(std::move(s), "error", error);
}

void EngineLoop::Impl::publish() {
  EngineLoopMetrics m = counters;
  int64_t intake_size = 0;
  {
    std::lock_guard<std::mutex> lock(mu);
    intake_size = static_cast<int64_t>(intake.size());
    if (!engine_dead) engine_waiting = engine->num_waiting();
  }
  if (!engine_dead) {
    m.running = engine->num_running();
    m.waiting = intake_size + engine->num_waiting();
    m.preemptions = engine->stats().preemptions;
    m.kv_pages_used = engine->pages_used();
    m.kv_pages_cached = engine->page_pool().num_cached_only();
    if (const PrefixCache* cache = engine->prefix_cache()) {
      m.prefix_cache_queries = cache->stats().queries;
      m.prefix_cache_hits = cache->stats().hits;
    }
  } else {
    m.waiting = intake_size;
  }
  std::lock_guard<std::mutex> lock(metrics_mu);
  snapshot = std::move(m);
}

void EngineLoop::Impl::serve(std::deque<Submitted>&& taken, std::vector<int64_t>&& cancelled,
                             bool abort_in_flight) {
  for (Submitted& s : taken) admit(std::move(s), abort_in_flight);
  cancelled.insert(cancelled.end(), failed_callbacks.begin(), failed_callbacks.end());
  failed_callbacks.clear();
  for (int64_t id : cancelled) abort_live(id, "cancelled");
  const Clock::time_point now = Clock::now();
  std::vector<std::pair<int64_t, std::string>> ending;
  for (const auto& [id, l] : live) {
    if (abort_in_flight) {
      ending.emplace_back(id, "shutdown");
    } else if (l.request.deadline && *l.request.deadline <= now) {
      ending.emplace_back(id, "deadline");
    }
  }
  for (const auto& [id, reason] : ending) abort_live(id, reason);
  if (!engine->has_unfinished()) return;
  for (GenerationResult& r : engine->step()) {
    const int64_t id = loop_of.at(r.id);
    finish(id, std::move(r), "");
  }
}

void EngineLoop::Impl::run() {
  for (;;) {
    std::deque<Submitted> taken;
    std::vector<int64_t> cancelled;
    std::deque<std::function<void()>> changes;
    bool stop = false, abort_in_flight = false;
    const bool busy = !engine_dead && engine->has_unfinished();
    {
      std::unique_lock<std::mutex> lock(mu);
      // Idle: sleep until a request, a cancellation, a flow change or a shutdown arrives.
      if (!busy) {
        wake.wait(lock, [&] {
          return !intake.empty() || !cancels.empty() || !controls.empty() || stopping;
        });
      }
      taken.swap(intake);
      cancelled.swap(cancels);
      changes.swap(controls);
      stop = stopping;
      abort_in_flight = abort_all;
      // Counted as waiting until the next publish() counts the engine's queue.
      engine_waiting += static_cast<int64_t>(taken.size());
    }
    for (std::function<void()>& change : changes) change();  // each reports its own error
    if (!engine_dead) {
      try {
        serve(std::move(taken), std::move(cancelled), abort_in_flight);
      } catch (const std::exception& e) {
        // A device error, or a bug: never a silent end of the process or of a request.
        fail_everything(e.what());
      }
    }
    publish();
    deliver_ended();
    if (stop && (engine_dead || !engine->has_unfinished())) {
      std::lock_guard<std::mutex> lock(mu);
      // Nothing can arrive once stopping is set; a flow change queued before it still runs.
      if (intake.empty() && controls.empty()) break;
    }
  }
}

EngineLoop::EngineLoop(std::unique_ptr<Engine> engine, const EngineLoopOptions& options)
    : impl_(std::make_unique<Impl>(std::move(engine), options)) {
  impl_->thread = std::thread([impl = impl_.get()] { impl->run(); });
}

EngineLoop::~EngineLoop() {
  shutdown(/*abort_in_flight=*/true);
}

int64_t EngineLoop::submit(LoopRequest request) {
  Impl& m = *impl_;
  auto refuse_if_closed = [&] {
    if (m.stopping) fail("the engine loop is shutting down: it takes no new requests");
    if (!m.fatal.empty()) fail("the engine failed and takes no new requests: ", m.fatal);
  };
  {
    std::lock_guard<std::mutex> lock(m.mu);
    refuse_if_closed();
  }
  // Outside the lock: it reads only the model and the engine's options, and a long prompt
  // should not hold up the loop thread.
  m.engine->validate_request(request.prompt, request.params);
  int64_t id = 0;
  {
    std::lock_guard<std::mutex> lock(m.mu);
    refuse_if_closed();
    const int64_t waiting = static_cast<int64_t>(m.intake.size()) + m.engine_waiting;
    if (waiting >= m.options.max_waiting) {
      throw QueueFullError(str_cat("the engine's waiting queue is full (", waiting,
                                   " requests wait, max_waiting ", m.options.max_waiting,
                                   "): retry later"));
    }
    id = m.next_id++;
    m.intake.push_back({id, std::move(request), Clock::now()});
  }
  m.wake.notify_one();
  return id;
}

void EngineLoop::cancel(int64_t id) {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (id < 0 || id >= impl_->next_id) return;
    impl_->cancels.push_back(id);
  }
  impl_->wake.notify_one();
}

void EngineLoop::shutdown(bool abort_in_flight) {
  Impl& m = *impl_;
  {
    std::lock_guard<std::mutex> lock(m.mu);
    m.stopping = true;
    // A later shutdown(true) turns a draining shutdown into an aborting one.
    m.abort_all = m.abort_all || abort_in_flight;
  }
  m.wake.notify_one();
  std::lock_guard<std::mutex> lock(m.join_mu);
  if (m.thread.joinable()) m.thread.join();
}

EngineLoopMetrics EngineLoop::metrics() const {
  std::lock_guard<std::mutex> lock(impl_->metrics_mu);
  return impl_->snapshot;
}

bool EngineLoop::accepting() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return !impl_->stopping && impl_->fatal.empty();
}

const std::string& EngineLoop::flow_name() const {
  return impl_->engine->flow_name();
}

std::vector<std::string> EngineLoop::flow_names() const {
  return impl_->engine->flow_names();
}

namespace {

// Runs `change` on the loop thread (through `run_on_loop`) and waits for it; rethrows its error.
void run_and_wait(const std::function<void(std::function<void()>)>& run_on_loop,
                  std::function<void()> change) {
  auto done = std::make_shared<std::promise<void>>();
  std::future<void> result = done->get_future();
  run_on_loop([done, change = std::move(change)] {
    try {
      change();
      done->set_value();
    } catch (...) {
      done->set_exception(std::current_exception());
    }
  });
  result.get();
}

}  // namespace

void EngineLoop::Impl::run_control(const std::string& refusal, std::function<void()> change) {
  Impl& m = *this;
  run_and_wait(
      [&m, &refusal](std::function<void()> task) {
        {
          std::lock_guard<std::mutex> lock(m.mu);
          if (m.stopping) fail("the engine loop is shutting down", refusal);
          if (!m.fatal.empty()) fail("the engine failed", refusal, ": ", m.fatal);
          m.controls.push_back(std::move(task));
        }
        m.wake.notify_one();
      },
      [&m, &refusal, change = std::move(change)] {
        if (m.engine_dead) fail("the engine failed", refusal);
        change();
      });
}

void EngineLoop::add_flow(std::shared_ptr<const SparseAttentionConfig> flow,
                          const std::string& name) {
  Impl& m = *impl_;
  m.run_control(" and takes no new flows",
                [&m, flow = std::move(flow), name] { m.engine->add_flow(flow, name); });
}

void EngineLoop::remove_flow(const std::string& name) {
  Impl& m = *impl_;
  m.run_control("", [&m, name] { m.engine->remove_flow(name); });
}

SparseStats EngineLoop::flow_stats(const std::string& name) {
  Impl& m = *impl_;
  SparseStats stats;
  m.run_control("", [&m, &stats, name] { stats = m.engine->flow_stats(name); });
  return stats;
}

const LoadedModel& EngineLoop::model() const {
  return impl_->engine->model();
}

const EngineOptions& EngineLoop::engine_options() const {
  return impl_->engine->options();
}

}  // namespace vortex
