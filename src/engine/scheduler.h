// Continuous batching: each step, decide which tokens of which requests to compute, within a
// token budget, a running-set limit and the free KV pages, and reserve their pages.
//
// Policy (default, decode first): running requests are served oldest admitted first, each with
// the tokens it has left up to the step's budget: one for a request past its prefill (a decode),
// the next chunk for one in prefill (chunked prefill). When a request cannot get a page, the most
// recently admitted request is preempted by recompute (pages freed, num_computed = 0, output
// kept, back to the front of the waiting queue), down to the requester itself. Then, unless
// something was preempted, waiting requests are admitted in FIFO order while the running limit,
// the budget and the free pages allow, less a page held back for each running request whose next
// token starts a new page; the head of the queue blocks the rest.
//
// Policy prefill_first: a step that can do prefill work does only that. Running requests with
// more than one token left (part-way through a prompt or a recompute) get their next chunk, from
// the free pages less those held back as for admission, and then waiting requests are admitted as
// above; requests with one token left (a decode, or the last token of a prompt) wait. Such a step
// never preempts: a request it cannot give a page to simply waits. When it would schedule nothing
// (no prefill work, or none that fits the pages), the step is planned as a decode-first step,
// with its preemptions, so the engine never stalls. Requests thus finish their prompts first and
// decode in lockstep, as in throughput-oriented servers.
//
// With a prefix cache (set_prefix_cache), admission first looks the request's prompt up in it:
// the full pages of the longest cached prefix join the request's block table as computed tokens
// (at most (length - 1) / page_size of them, so the last token is always computed), and pages
// only the cache holds count as available: they are evicted, least recently used first, when an
// allocation needs them. Preempting a request keeps its cached prompt pages in the cache, so its
// recompute matches them again.
//
// Under both policies, every running request but the most recently admitted has at most one token
// left before and after a step (only the newest can be part-way through a multi-token prefill: an
// older one was cut short by the budget or the pages, which stops admission). Under decode first
// they have none left after a step: their decode was scheduled. So a decode-first step serves
// every one-token request before the newest one's chunk, and max_step_tokens >= max_batch
// guarantees each of them its token.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <vector>

#include "engine/request.h"
#include "kv/page_pool.h"
#include "kv/prefix_cache.h"

namespace vortex {

struct SchedulerLimits {
  int32_t page_size = 16;
  int32_t max_batch = 64;         // requests in the running set
  int32_t max_step_tokens = 512;  // tokens computed per step (decode tokens + prefill chunks)
  int32_t num_pages = 0;          // pages in the pool given to schedule(); required, so that
                                  // add() can reject a prompt that could never fit
  bool prefill_first = false;     // steps that can prefill carry only prefill work (see above)
};

// Compute tokens [first, first + count) of the request's sequence this step.
struct ScheduledWork {
  Request* request = nullptr;
  int32_t first = 0;
  int32_t count = 0;
  // The step ends at the sequence's last token, so it samples the next one for this request.
  bool samples() const { return first + count == request->seq_len(); }
};

class Scheduler {
 public:
  // Throws vortex::Error on limits that cannot work (page_size not a power of two, no pages,
  // max_step_tokens below max_batch so a step could not give every decode its token).
  explicit Scheduler(SchedulerLimits limits);

  // Queues a request (FIFO; state kWaiting). Throws vortex::Error for an empty prompt or one that
  // could never run in the whole pool (its prompt plus one generated token must fit).
  void add(Request* request);

  // Plans one step: reserves the pages of every scheduled token and advances num_computed by the
  // scheduled counts. The caller runs exactly this work, appends a token to every request whose
  // work samples() (or finishes it) and only then calls schedule again.
  std::vector<ScheduledWork> schedule(PagePool& pool);

  // Shares full prompt pages between requests through `cache` (null: no sharing). The cache
  // must be built on the pool given to schedule(), and outlive the scheduler's use of it.
  void set_prefix_cache(PrefixCache* cache) { cache_ = cache; }
  // After the runner computed the step's work: offers the prompt pages that work completed to
  // the prefix cache (none without one).
  void cache_computed_pages(const std::vector<ScheduledWork>& work, PagePool& pool);

  // Releases the request's pages and drops it from the running set or the waiting queue;
  // state kFinished.
  void finish(Request* request, PagePool& pool);

  const std::vector<Request*>& running() const { return running_; }
  size_t num_waiting() const { return waiting_.size(); }
  bool idle() const { return running_.empty() && waiting_.empty(); }
  const SchedulerLimits& limits() const { return limits_; }

  // Requests preempted by the last schedule() call, for stats and tests.
  const std::vector<Request*>& preempted_last_step() const { return preempted_; }
  // Requests the last schedule() call finished because their next token would need more pages
  // than the whole pool has (the engine reports them as stopped for length).
  const std::vector<Request*>& out_of_room_last_step() const { return out_of_room_; }

 private:
  // Tokens request running_[index] can store in its own pages and the free ones less
  // `held_back` (capped at what it has left to compute); 0 when it needs a page and none is free
  // to it.
  int32_t token_room(size_t index, const PagePool& pool, int32_t held_back = 0) const;
  // Running requests other than `except` whose next token starts a new page: the free pages
  // admission (and a prefill-first step) leaves to them.
  int32_t pages_held_back(const Request* except) const;
  // The two ways to plan a step's work; see the policies above.
  void plan_decode_first(PagePool& pool, int32_t& budget, std::vector<ScheduledWork>& work);
  void plan_prefill_only(PagePool& pool, int32_t& budget, std::vector<ScheduledWork>& work);
  void preempt(Request* request, PagePool& pool);
  void finish_out_of_room(PagePool& pool);
  void admit(PagePool& pool, int32_t& budget, std::vector<ScheduledWork>& work);
  void reserve_and_plan(Request* request, int32_t count, PagePool& pool, int32_t& budget,
                        std::vector<ScheduledWork>& work);
  // Gives a request being admitted the cached pages of its prompt's longest cached prefix.
  void match_prefix(Request* request, PagePool& pool);

  SchedulerLimits limits_;
  PrefixCache* cache_ = nullptr;
  std::deque<Request*> waiting_;
  std::vector<Request*> running_;  // in admission order: back() is the most recently admitted
  std::vector<Request*> preempted_;
  std::vector<Request*> out_of_room_;
};

}  // namespace vortex
