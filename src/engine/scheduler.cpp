#include "engine/scheduler.h"

#include <algorithm>

#include "core/error.h"
#include "kv/block_table.h"

namespace vortex {
namespace {

int32_t tokens_left(const Request& r) {
  return r.seq_len() - r.num_computed;
}

// Its next token starts a new page.
bool pages_full(const Request& r, int32_t page_size) {
  return r.blocks.capacity(page_size) <= r.num_computed;
}

}  // namespace

Scheduler::Scheduler(SchedulerLimits limits) : limits_(limits) {
  const SchedulerLimits& l = limits_;
  if (l.page_size < 1 || (l.page_size & (l.page_size - 1)) != 0) {
    fail("scheduler: page_size must be a power of two, got ", l.page_size);
  }
  if (l.num_pages < 1) {
    fail("scheduler: num_pages must be the size of the page pool (at least 1), got ", l.num_pages);
  }
  if (l.max_batch < 1) fail("scheduler: max_batch must be at least 1, got ", l.max_batch);
  if (l.max_step_tokens < l.max_batch) {
    fail("scheduler: max_step_tokens (", l.max_step_tokens, ") must be at least max_batch (",
         l.max_batch, ") so that every running request can decode each step");
  }
}

void Scheduler::add(Request* request) {
  VORTEX_ASSERT(request != nullptr);
  VORTEX_ASSERT(request->num_computed == 0 && request->blocks.pages().empty());
  if (request->prompt.empty()) fail("request ", request->id, ": the prompt is empty");
  // The prompt's KV plus the KV of the first generated token must fit, or the request could never
  // take a single decode step even with the whole pool to itself.
  const int32_t p = limits_.page_size;
  if (pages_for_tokens(request->seq_len() + 1, p) > limits_.num_pages) {
    int64_t max_prompt = static_cast<int64_t>(limits_.num_pages) * p - 1;
    fail("request ", request->id, ": prompt of ", request->seq_len(),
         " tokens does not fit in the KV cache, which holds at most ", max_prompt,
         " prompt tokens (", limits_.num_pages, " pages of ", p,
         " tokens, less one for the first generated token)");
  }
  request->state = RequestState::kWaiting;
  waiting_.push_back(request);
}

std::vector<ScheduledWork> Scheduler::schedule(PagePool& pool) {
  VORTEX_ASSERT(pool.num_pages() == limits_.num_pages);
  preempted_.clear();
  out_of_room_.clear();
  finish_out_of_room(pool);

  std::vector<ScheduledWork> work;
  int32_t budget = limits_.max_step_tokens;
  if (limits_.prefill_first) {
    plan_prefill_only(pool, budget, work);
    if (!work.empty()) return work;
    // No prefill work fits: it planned nothing and changed nothing, so plan a normal step.
    VORTEX_ASSERT(budget == limits_.max_step_tokens && preempted_.empty());
  }
  plan_decode_first(pool, budget, work);
  return work;
}

void Scheduler::plan_decode_first(PagePool& pool, int32_t& budget,
                                  std::vector<ScheduledWork>& work) {
  size_t i = 0;
  while (i < running_.size()) {
    Request* r = running_[i];
    VORTEX_ASSERT(tokens_left(*r) >= 1);  // a request that sampled got its token or was finished
    int32_t wanted = std::min(tokens_left(*r), budget);
    if (wanted == 0) {
      ++i;
      continue;
    }
    int32_t count = 0;
    for (;;) {
      count = std::min(wanted, token_room(i, pool));
      if (count > 0) break;
      Request* victim = running_.back();
      preempt(victim, pool);
      if (victim == r) break;
    }
    if (count > 0) {
      reserve_and_plan(r, count, pool, budget, work);
      ++i;
    }
    // else r was the newest and went back to waiting, so the loop is over.
  }
  // A preemption means pages are short: admitting more now would only evict again.
  if (preempted_.empty()) admit(pool, budget, work);
}

void Scheduler::plan_prefill_only(PagePool& pool, int32_t& budget,
                                  std::vector<ScheduledWork>& work) {
  // Requests part-way through a prompt or a recompute (only the newest can be), oldest first.
  // Those with one token left wait, and so do their pages: a chunk gets only the free pages that
  // admission would give, and nothing is preempted for it.
  bool cut_short = false;
  for (size_t i = 0; i < running_.size() && budget > 0; ++i) {
    Request* r = running_[i];
    VORTEX_ASSERT(tokens_left(*r) >= 1);
    if (tokens_left(*r) == 1) continue;
    int32_t wanted = std::min(tokens_left(*r), budget);
    int32_t count = std::min(wanted, token_room(i, pool, pages_held_back(r)));
    if (count > 0) reserve_and_plan(r, count, pool, budget, work);
    cut_short = cut_short || count < wanted;
  }
  // As in a decode-first step, nobody is admitted behind a prompt the pages cut short (the room
  // admission computes would be zero anyway; this keeps the invariant plain).
  if (!cut_short) admit(pool, budget, work);
}

int32_t Scheduler::token_room(size_t index, const PagePool& pool, int32_t held_back) const {
  const int32_t p = limits_.page_size;
  const Request& r = *running_[index];
  int64_t free_to_it = std::max(0, pool.num_available() - held_back);
  int64_t room = static_cast<int64_t>(r.blocks.capacity(p)) - r.num_computed + free_to_it * p;
  return static_cast<int32_t>(std::min<int64_t>(room, tokens_left(r)));
}

int32_t Scheduler::pages_held_back(const Request* except) const {
  const int32_t p = limits_.page_size;
  return static_cast<int32_t>(
      std::count_if(running_.begin(), running_.end(),
                    [&](const Request* o) { return o != except && pages_full(*o, p); }));
}

void Scheduler::reserve_and_plan(Request* request, int32_t count, PagePool& pool, int32_t& budget,
                                 std::vector<ScheduledWork>& work) {
  VORTEX_ASSERT(count >= 1 && count <= budget);
  const int32_t needed =
      request->blocks.pages_needed(request->num_computed + count, limits_.page_size);
  if (cache_ && needed > pool.num_free()) cache_->evict(needed - pool.num_free(), pool);
  bool reserved = request->blocks.reserve(pool, request->num_computed + count, limits_.page_size);
  VORTEX_ASSERT(reserved);  // the caller sized count to the free pages
  work.push_back(ScheduledWork{request, request->num_computed, count});
  request->num_computed += count;
  budget -= count;
}

void Scheduler::admit(PagePool& pool, int32_t& budget, std::vector<ScheduledWork>& work) {
  const int32_t p = limits_.page_size;
  while (!waiting_.empty() && running_.size() < static_cast<size_t>(limits_.max_batch) &&
         budget > 0) {
    Request* r = waiting_.front();
    VORTEX_ASSERT(r->num_computed == 0 && r->blocks.pages().empty());
    // Keep a page for every running request whose next token starts a new page.
    const int32_t held_back = pages_held_back(nullptr);
    auto room = [&] {
      int64_t pages = std::max(0, pool.num_available() - held_back);
      int64_t tokens = pages * p + r->blocks.capacity(p) - r->num_computed;
      return static_cast<int32_t>(
          std::min<int64_t>({tokens, static_cast<int64_t>(r->seq_len() - r->num_computed),
                             static_cast<int64_t>(budget)}));
    };
    if (room() < 1) break;  // FIFO: nobody overtakes the head of the queue
    // A matched prefix needs no new pages, but the pages it takes from the cache are no longer
    // evictable: in the rare case that leaves no room, the match is undone and the queue waits.
    match_prefix(r, pool);
    const int32_t count = room();
    if (count < 1) {
      r->blocks.release_all(pool);
      r->blocks = BlockTable{};
      r->num_computed = 0;
      break;
    }
    waiting_.pop_front();
    r->state = RequestState::kRunning;
    running_.push_back(r);
    reserve_and_plan(r, count, pool, budget, work);
  }
}

void Scheduler::match_prefix(Request* request, PagePool& pool) {
  if (!cache_) return;
  const int32_t p = limits_.page_size;
  // Only prompt pages are cached; at least the last token of the sequence is computed.
  const int32_t usable =
      std::min(static_cast<int32_t>(request->prompt.size()), request->seq_len() - 1);
  std::vector<int32_t> pages = cache_->match(request->prompt, usable / p, pool);
  request->num_computed = static_cast<int32_t>(pages.size()) * p;
  request->blocks.adopt(std::move(pages));
}

void Scheduler::cache_computed_pages(const std::vector<ScheduledWork>& work, PagePool& pool) {
  if (!cache_) return;
  const int32_t p = limits_.page_size;
  for (const ScheduledWork& w : work) {
    const Request& r = *w.request;
    const int32_t prompt_len = static_cast<int32_t>(r.prompt.size());
    // Prompt pages this work filled: the full pages below min(computed, prompt length).
    const int32_t full = std::min(w.first + w.count, prompt_len) / p;
    if (full > w.first / p) cache_->insert(r.prompt, r.blocks.pages(), full, pool);
  }
}

void Scheduler::preempt(Request* request, PagePool& pool) {
  auto it = std::find(running_.begin(), running_.end(), request);
  VORTEX_ASSERT(it != running_.end());
  running_.erase(it);
  request->blocks.release_all(pool);
  request->num_computed = 0;  // recompute: the output stays and is prefilled again with the prompt
  request->state = RequestState::kWaiting;
  ++request->num_preemptions;
  waiting_.push_front(request);
  preempted_.push_back(request);
}

void Scheduler::finish_out_of_room(PagePool& pool) {
  // Such a request could only run by evicting everyone and then itself, forever.
  for (size_t i = 0; i < running_.size();) {
    Request* r = running_[i];
    if (pages_for_tokens(r->seq_len(), limits_.page_size) > limits_.num_pages) {
      finish(r, pool);
      out_of_room_.push_back(r);
    } else {
      ++i;
    }
  }
}

void Scheduler::finish(Request* request, PagePool& pool) {
  VORTEX_ASSERT(request != nullptr);
  if (request->state == RequestState::kFinished) return;
  if (auto it = std::find(running_.begin(), running_.end(), request); it != running_.end()) {
    running_.erase(it);
  } else if (auto w = std::find(waiting_.begin(), waiting_.end(), request); w != waiting_.end()) {
    waiting_.erase(w);
  } else {
    VORTEX_ASSERT(false && "finish() of a request this scheduler does not hold");
  }
  request->blocks.release_all(pool);
  request->state = RequestState::kFinished;
}

}  // namespace vortex
