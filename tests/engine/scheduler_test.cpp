#include "engine/scheduler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/rng.h"

namespace vortex {
namespace {

// The token "sampled" for position pos of request id: deterministic, so a test can tell whether
// an output survived preemption intact.
int32_t fake_token(int64_t id, int32_t pos) {
  return static_cast<int32_t>((id * 7919 + static_cast<int64_t>(pos) * 31) % 50021);
}

// What a KV slot holds in the fake cache: which request wrote which of its tokens there.
struct SlotTag {
  int64_t id = -1;
  int32_t pos = -1;
  int32_t token = -1;
  bool operator==(const SlotTag&) const = default;
};

// Plays the engine around a Scheduler: runs the planned work on a fake KV cache, samples fake
// tokens, finishes requests at their max output length, and checks the scheduler's promises
// after every step.
class FakeEngine {
 public:
  explicit FakeEngine(SchedulerLimits limits)
      : limits_(limits),
        pool_(limits.num_pages),
        scheduler_(limits),
        kv_(static_cast<size_t>(limits.num_pages) * static_cast<size_t>(limits.page_size)) {}

  Request* add(std::vector<int32_t> prompt, int32_t max_output) {
    auto request = std::make_unique<Request>();
    request->id = static_cast<int64_t>(requests_.size());
    request->prompt = std::move(prompt);
    Request* r = request.get();
    requests_.push_back(std::move(request));
    max_output_[r] = max_output;
    scheduler_.add(r);
    return r;
  }

  Request* add_prompt_of(int32_t length, int32_t max_output) {
    std::vector<int32_t> prompt(static_cast<size_t>(length));
    for (int32_t i = 0; i < length; ++i) prompt[static_cast<size_t>(i)] = 100000 + i;
    return add(std::move(prompt), max_output);
  }

  // One engine step; returns the work the scheduler planned.
  std::vector<ScheduledWork> step() {
    std::map<Request*, std::vector<int32_t>> output_before;
    std::set<Request*> decoding_before;
    for (Request* r : scheduler_.running()) {
      output_before[r] = r->output;
      if (r->seq_len() - r->num_computed == 1) decoding_before.insert(r);
    }
    std::vector<ScheduledWork> work = scheduler_.schedule(pool_);
    check_preempted(output_before);
    check_work(work, decoding_before);
    check_pages();
    run(work);
    ++steps_;
    return work;
  }

  void run_until_idle(int max_steps) {
    int empty_in_a_row = 0;
    while (!scheduler_.idle()) {
      ASSERT_LT(steps_, max_steps) << "the scheduler stopped making progress";
      std::vector<ScheduledWork> work = step();
      if (::testing::Test::HasFatalFailure()) return;
      // A step may come back empty right after a request preempted itself; never twice.
      empty_in_a_row = work.empty() ? empty_in_a_row + 1 : 0;
      ASSERT_LT(empty_in_a_row, 2) << "two empty steps in a row at step " << steps_;
    }
  }

  // Takes a page from the pool behind the scheduler's back, as a prefix cache would.
  int32_t hold_page_outside() {
    std::optional<int32_t> page = pool_.allocate();
    VORTEX_ASSERT(page.has_value());
    outside_.push_back(*page);
    return *page;
  }
  void release_pages_outside() {
    for (int32_t page : outside_) pool_.release(page);
    outside_.clear();
  }

  // Requests whose work in the last step sampled a token.
  const std::set<Request*>& sampled_last_step() const { return sampled_; }
  Scheduler& scheduler() { return scheduler_; }
  PagePool& pool() { return pool_; }
  const std::vector<std::unique_ptr<Request>>& requests() const { return requests_; }
  int64_t total_preemptions() const { return total_preemptions_; }
  int steps() const { return steps_; }

 private:
  void check_preempted(const std::map<Request*, std::vector<int32_t>>& output_before) {
    for (Request* r : scheduler_.preempted_last_step()) {
      total_preemptions_++;
      EXPECT_EQ(r->state, RequestState::kWaiting);
      EXPECT_EQ(r->num_computed, 0) << "a preempted request recomputes from the start";
      EXPECT_TRUE(r->blocks.pages().empty());
      EXPECT_EQ(r->output, output_before.at(r)) << "a preempted request keeps its output";
      next_token_[r] = 0;
    }
    EXPECT_TRUE(scheduler_.out_of_room_last_step().empty());
  }

  void check_work(const std::vector<ScheduledWork>& work, const std::set<Request*>& decoding) {
    const int32_t p = limits_.page_size;
    int64_t total = 0;
    std::set<Request*> seen;
    for (const ScheduledWork& w : work) {
      Request* r = w.request;
      EXPECT_TRUE(seen.insert(r).second) << "request " << r->id << " scheduled twice in a step";
      EXPECT_EQ(r->state, RequestState::kRunning);
      EXPECT_GE(w.count, 1);
      EXPECT_EQ(w.first, next_token_[r]) << "request " << r->id << ": gap or repeat";
      EXPECT_LE(w.first + w.count, r->seq_len());
      EXPECT_EQ(r->num_computed, w.first + w.count);
      EXPECT_GE(r->blocks.capacity(p), w.first + w.count) << "a scheduled token has no page";
      next_token_[r] = w.first + w.count;
      total += w.count;
    }
    EXPECT_LE(total, limits_.max_step_tokens);
    EXPECT_LE(scheduler_.running().size(), static_cast<size_t>(limits_.max_batch));
    // Every request that was decoding and still runs got its one token, except in a step of
    // prefill work under prefill_first, which gives none of them one and never preempts.
    size_t decoding_running = 0, decoding_served = 0;
    for (Request* r : decoding) {
      if (r->state != RequestState::kRunning) continue;
      ++decoding_running;
      decoding_served += seen.count(r);
    }
    if (limits_.prefill_first && decoding_running > 0 && decoding_served == 0) {
      EXPECT_FALSE(work.empty()) << "decodes waited for no prefill work";
      EXPECT_TRUE(scheduler_.preempted_last_step().empty()) << "a prefill-only step preempted";
    } else {
      for (Request* r : decoding) {
        if (r->state != RequestState::kRunning) continue;
        EXPECT_TRUE(seen.count(r)) << "decoding request " << r->id << " got no token";
      }
    }
    // Only the most recently admitted running request may still be part-way through prefill;
    // under prefill_first the others may have their one token (decode or prompt's last) waiting.
    const std::vector<Request*>& running = scheduler_.running();
    for (size_t i = 0; i + 1 < running.size(); ++i) {
      if (limits_.prefill_first) {
        EXPECT_LE(running[i]->seq_len() - running[i]->num_computed, 1);
      } else {
        EXPECT_EQ(running[i]->num_computed, running[i]->seq_len());
      }
    }
  }

  void check_pages() {
    std::set<int32_t> owned;
    for (Request* r : scheduler_.running()) {
      EXPECT_EQ(static_cast<int32_t>(r->blocks.pages().size()),
                pages_for_tokens(r->num_computed, limits_.page_size))
          << "request " << r->id << " holds pages it does not use";
      for (int32_t page : r->blocks.pages()) {
        EXPECT_TRUE(owned.insert(page).second) << "page " << page << " owned twice";
        EXPECT_EQ(pool_.refcount(page), 1);
      }
    }
    for (const auto& r : requests_) {
      if (r->state != RequestState::kRunning) {
        EXPECT_TRUE(r->blocks.pages().empty());
      }
    }
    for (int32_t page : outside_) {
      EXPECT_FALSE(owned.count(page)) << "page " << page << " is held outside the scheduler";
    }
    EXPECT_EQ(pool_.num_free() + static_cast<int32_t>(owned.size() + outside_.size()),
              pool_.num_pages());
  }

  SlotTag& slot(const Request& r, int32_t pos) {
    const int32_t p = limits_.page_size;
    int32_t page = r.blocks.pages()[static_cast<size_t>(pos / p)];
    return kv_[static_cast<size_t>(page) * static_cast<size_t>(p) + static_cast<size_t>(pos % p)];
  }

  void run(const std::vector<ScheduledWork>& work) {
    for (const ScheduledWork& w : work) {
      for (int32_t t = w.first; t < w.first + w.count; ++t) {
        slot(*w.request, t) = SlotTag{w.request->id, t, w.request->token_at(t)};
      }
    }
    // Nobody's KV was overwritten, and a recompute rewrote every token it had before.
    for (Request* r : scheduler_.running()) {
      for (int32_t t = 0; t < r->num_computed; ++t) {
        ASSERT_EQ(slot(*r, t), (SlotTag{r->id, t, r->token_at(t)}))
            << "request " << r->id << " token " << t << " at step " << steps_;
      }
    }
    sampled_.clear();
    for (const ScheduledWork& w : work) {
      if (!w.samples()) continue;
      sampled_.insert(w.request);
      Request* r = w.request;
      r->output.push_back(fake_token(r->id, r->seq_len()));
      if (static_cast<int32_t>(r->output.size()) == max_output_.at(r)) {
        scheduler_.finish(r, pool_);
      }
    }
  }

  SchedulerLimits limits_;
  PagePool pool_;
  Scheduler scheduler_;
  std::vector<SlotTag> kv_;
  std::vector<std::unique_ptr<Request>> requests_;
  std::map<Request*, int32_t> max_output_;
  std::map<Request*, int32_t> next_token_;
  std::vector<int32_t> outside_;
  std::set<Request*> sampled_;
  int64_t total_preemptions_ = 0;
  int steps_ = 0;
};

SchedulerLimits limits(int32_t page_size, int32_t num_pages, int32_t max_batch,
                       int32_t max_step_tokens) {
  SchedulerLimits l;
  l.page_size = page_size;
  l.num_pages = num_pages;
  l.max_batch = max_batch;
  l.max_step_tokens = max_step_tokens;
  return l;
}

struct Span {
  int32_t first, count;
  bool operator==(const Span&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Span& s) {
  return os << "[" << s.first << ", +" << s.count << ")";
}

Span span_of(const std::vector<ScheduledWork>& work, const Request* r) {
  for (const ScheduledWork& w : work) {
    if (w.request == r) return Span{w.first, w.count};
  }
  return Span{-1, 0};
}

// --- Random simulation ----------------------------------------------------------------------

struct SimConfig {
  int32_t page_size, num_pages, max_batch, max_step_tokens;
  int32_t num_requests, max_prompt, max_output, last_arrival;
};

int64_t simulate(const SimConfig& c, uint64_t seed, bool prefill_first = false) {
  SchedulerLimits l = limits(c.page_size, c.num_pages, c.max_batch, c.max_step_tokens);
  l.prefill_first = prefill_first;
  FakeEngine engine(l);
  Rng rng(seed);
  auto below = [&](int32_t n) {
    return static_cast<int32_t>(rng.next_u64() % static_cast<uint64_t>(n));
  };
  struct Arrival {
    int step;
    int32_t prompt, max_output;
  };
  std::vector<Arrival> arrivals;
  const int32_t capacity = c.num_pages * c.page_size;
  for (int32_t i = 0; i < c.num_requests; ++i) {
    int32_t prompt = 1 + below(c.max_prompt);
    int32_t max_output = 1 + below(c.max_output);
    // The last token's KV is never computed, so a request runs to the end once
    // prompt + max_output - 1 tokens fit in the pool.
    prompt = std::min(prompt, capacity - 1);
    max_output = std::min(max_output, capacity - prompt + 1);
    arrivals.push_back({below(c.last_arrival + 1), prompt, max_output});
  }
  std::stable_sort(arrivals.begin(), arrivals.end(),
                   [](const Arrival& a, const Arrival& b) { return a.step < b.step; });

  size_t next = 0;
  int empty_in_a_row = 0;
  while (next < arrivals.size() || !engine.scheduler().idle()) {
    while (next < arrivals.size() && arrivals[next].step <= engine.steps()) {
      engine.add_prompt_of(arrivals[next].prompt, arrivals[next].max_output);
      ++next;
    }
    if (engine.steps() > 20000) {
      ADD_FAILURE() << "no progress after 20000 steps (seed " << seed << ")";
      return -1;
    }
    std::vector<ScheduledWork> work = engine.step();
    if (::testing::Test::HasFailure()) {
      ADD_FAILURE() << "seed " << seed << ", step " << engine.steps();
      return -1;
    }
    bool busy = !engine.scheduler().idle() || !work.empty();
    empty_in_a_row = (work.empty() && busy) ? empty_in_a_row + 1 : 0;
    if (empty_in_a_row >= 2) {
      ADD_FAILURE() << "two empty steps in a row (seed " << seed << ")";
      return -1;
    }
  }
  for (const auto& r : engine.requests()) {
    EXPECT_EQ(r->state, RequestState::kFinished) << "request " << r->id;
    for (size_t k = 0; k < r->output.size(); ++k) {
      EXPECT_EQ(r->output[k], fake_token(r->id, static_cast<int32_t>(r->prompt.size() + k)))
          << "request " << r->id << " output " << k << " (seed " << seed << ")";
    }
  }
  EXPECT_EQ(engine.pool().num_free(), c.num_pages);
  return engine.total_preemptions();
}

TEST(SchedulerSimulation, RandomArrivalsUnderTightPagesKeepEveryInvariant) {
  const SimConfig configs[] = {
      // P, pages, max_batch, max_step_tokens, requests, max_prompt, max_output, last_arrival
      {4, 12, 8, 16, 60, 30, 12, 150},  {1, 24, 4, 8, 50, 16, 10, 100},
      {16, 6, 16, 64, 60, 70, 40, 200}, {4, 40, 64, 64, 120, 50, 30, 60},
      {2, 9, 3, 3, 40, 12, 8, 80},
  };
  for (const SimConfig& c : configs) {
    int64_t preemptions = 0;
    for (uint64_t seed = 1; seed <= 12; ++seed) {
      int64_t n = simulate(c, seed * 1000003 + static_cast<uint64_t>(c.page_size));
      ASSERT_GE(n, 0);
      preemptions += n;
    }
    // The budgets are tight on purpose: the test is only worth something if it preempts.
    EXPECT_GT(preemptions, 0) << "config with page_size " << c.page_size << ", " << c.num_pages
                              << " pages never preempted";
  }
}

TEST(SchedulerSimulation, PrefillFirstUnderTightPagesKeepsEveryInvariant) {
  const SimConfig configs[] = {
      // P, pages, max_batch, max_step_tokens, requests, max_prompt, max_output, last_arrival
      {4, 12, 8, 16, 60, 30, 12, 150},  {1, 24, 4, 8, 50, 16, 10, 100},
      {16, 6, 16, 64, 60, 70, 40, 200}, {4, 40, 64, 64, 120, 50, 30, 60},
      {2, 9, 3, 3, 40, 12, 8, 80},
  };
  int64_t preemptions = 0;
  for (const SimConfig& c : configs) {
    for (uint64_t seed = 1; seed <= 12; ++seed) {
      int64_t n = simulate(c, seed * 1000003 + static_cast<uint64_t>(c.page_size),
                           /*prefill_first=*/true);
      ASSERT_GE(n, 0);
      preemptions += n;
    }
  }
  EXPECT_GT(preemptions, 0) << "the page budgets were meant to force preemption";
}

// --- Focused behaviour -------------------------------------------------------------------------

TEST(Scheduler, ChunkedPrefillSplitsALongPromptOverSteps) {
  FakeEngine engine(limits(4, 64, 4, 8));
  Request* r = engine.add_prompt_of(20, 3);
  std::vector<Span> spans;
  std::vector<bool> samples;
  while (!engine.scheduler().idle()) {
    std::vector<ScheduledWork> work = engine.step();
    ASSERT_EQ(work.size(), 1u);
    spans.push_back(span_of(work, r));
    samples.push_back(engine.sampled_last_step().count(r) == 1);
  }
  EXPECT_EQ(spans, (std::vector<Span>{{0, 8}, {8, 8}, {16, 4}, {20, 1}, {21, 1}}));
  EXPECT_EQ(samples, (std::vector<bool>{false, false, true, true, true}));
  EXPECT_EQ(r->output.size(), 3u);
}

TEST(Scheduler, DecodeTokensComeBeforeANewPromptsChunk) {
  FakeEngine engine(limits(4, 64, 4, 8));
  Request* a = engine.add_prompt_of(3, 10);
  Request* b = engine.add_prompt_of(3, 10);
  engine.step();  // both prefilled, both sampled
  Request* c = engine.add_prompt_of(40, 1);
  std::vector<ScheduledWork> work = engine.step();
  EXPECT_EQ(span_of(work, a), (Span{3, 1}));
  EXPECT_EQ(span_of(work, b), (Span{3, 1}));
  EXPECT_EQ(span_of(work, c), (Span{0, 6}));  // what the budget leaves after the decodes
  ASSERT_EQ(work.size(), 3u);
  EXPECT_EQ(work[2].request, c);
}

TEST(Scheduler, AdmitsInArrivalOrderWithAPartialChunkForTheHeadBeforeLaterRequests) {
  // 4 pages of 4 tokens. The first request takes 3 pages; the second needs 2, and gets the page
  // left for part of its prompt rather than the third, which arrived later and would fit whole.
  FakeEngine engine(limits(4, 4, 8, 64));
  Request* first = engine.add_prompt_of(11, 2);
  Request* second = engine.add_prompt_of(8, 1);
  Request* third = engine.add_prompt_of(2, 1);
  std::vector<ScheduledWork> work = engine.step();
  EXPECT_EQ(span_of(work, first), (Span{0, 11}));
  // The second gets the page left over: a partial chunk, then nothing more is admitted.
  EXPECT_EQ(span_of(work, second), (Span{0, 4}));
  EXPECT_EQ(span_of(work, third).count, 0);
  EXPECT_EQ(engine.scheduler().num_waiting(), 1u);
  engine.run_until_idle(100);
  EXPECT_EQ(third->state, RequestState::kFinished);
}

TEST(Scheduler, AdmissionStopsAtMaxRunning) {
  FakeEngine engine(limits(4, 64, 2, 64));
  Request* a = engine.add_prompt_of(2, 5);
  Request* b = engine.add_prompt_of(2, 5);
  Request* c = engine.add_prompt_of(2, 5);
  std::vector<ScheduledWork> work = engine.step();
  EXPECT_EQ(work.size(), 2u);
  EXPECT_EQ(span_of(work, a), (Span{0, 2}));
  EXPECT_EQ(span_of(work, b), (Span{0, 2}));
  EXPECT_EQ(c->state, RequestState::kWaiting);
  engine.run_until_idle(100);
  EXPECT_EQ(c->state, RequestState::kFinished);
}

TEST(Scheduler, AdmissionHoldsBackThePageARunningDecodeNeedsNext) {
  // P=4, 2 pages. a's 4-token prompt fills page one, so its first decode will need page two: b,
  // arriving with it, is not admitted into page two (it would be evicted at once).
  FakeEngine engine(limits(4, 2, 8, 64));
  Request* a = engine.add_prompt_of(4, 3);
  Request* b = engine.add_prompt_of(2, 1);
  std::vector<ScheduledWork> work = engine.step();
  EXPECT_EQ(span_of(work, a), (Span{0, 4}));
  EXPECT_EQ(span_of(work, b).count, 0);
  EXPECT_EQ(b->state, RequestState::kWaiting);
  work = engine.step();
  EXPECT_EQ(span_of(work, a), (Span{4, 1}));
  EXPECT_TRUE(engine.scheduler().preempted_last_step().empty());
  engine.run_until_idle(100);
  EXPECT_EQ(b->num_preemptions, 0);
}

TEST(Scheduler, AdmissionHoldsNoPageForADecodeWithRoomInItsLastPage) {
  // P=4, 3 pages. After its first decode a has 5 tokens in 2 pages and room for 3 more, so the
  // last free page may go to b.
  FakeEngine engine(limits(4, 3, 8, 64));
  Request* a = engine.add_prompt_of(4, 5);
  engine.step();
  Request* b = engine.add_prompt_of(8, 1);
  std::vector<ScheduledWork> work = engine.step();
  EXPECT_EQ(span_of(work, a), (Span{4, 1}));  // took the second page
  EXPECT_EQ(span_of(work, b), (Span{0, 4}));  // the third, for its first chunk
  EXPECT_EQ(engine.pool().num_free(), 0);
  EXPECT_TRUE(engine.scheduler().preempted_last_step().empty());
}

TEST(Scheduler, PreemptsTheMostRecentlyAdmittedAndRequeuesItFirst) {
  // P=2, 6 pages. Three 3-token prompts take 2 pages each, the pool is full, and their first
  // decodes still fit their own pages. The next decode of a needs a new page: the newest (c) is
  // preempted, and returns to the front of the queue ahead of d, which arrived earlier.
  FakeEngine engine(limits(2, 6, 8, 64));
  Request* a = engine.add_prompt_of(3, 6);
  Request* b = engine.add_prompt_of(3, 6);
  Request* c = engine.add_prompt_of(3, 6);
  ASSERT_EQ(engine.step().size(), 3u);
  ASSERT_EQ(engine.pool().num_free(), 0);
  Request* d = engine.add_prompt_of(1, 1);
  std::vector<ScheduledWork> work = engine.step();  // token 3 of each, in their own pages
  ASSERT_EQ(work.size(), 3u);
  std::vector<int32_t> c_output = c->output;
  ASSERT_EQ(c_output.size(), 2u);

  work = engine.step();
  ASSERT_EQ(engine.scheduler().preempted_last_step(), (std::vector<Request*>{c}));
  EXPECT_EQ(span_of(work, a), (Span{4, 1}));
  EXPECT_EQ(span_of(work, b), (Span{4, 1}));  // the second of c's freed pages
  EXPECT_EQ(span_of(work, c).count, 0);
  EXPECT_EQ(span_of(work, d).count, 0);  // no admission in a step that preempted
  EXPECT_EQ(c->num_preemptions, 1);
  EXPECT_EQ(c->output, c_output);
  EXPECT_EQ(c->seq_len(), 5);  // its prompt and both sampled tokens, to recompute
  EXPECT_EQ(engine.scheduler().num_waiting(), 2u);

  // c is readmitted before d and recomputes from token 0.
  bool c_back = false;
  for (int s = 0; s < 50 && !c_back; ++s) {
    work = engine.step();
    Span cs = span_of(work, c);
    if (cs.count > 0) {
      c_back = true;
      EXPECT_EQ(cs.first, 0);
      EXPECT_EQ(d->state, RequestState::kWaiting) << "d overtook the preempted request";
    }
  }
  EXPECT_TRUE(c_back);
  engine.run_until_idle(200);
  EXPECT_EQ(c->output.size(), 6u);
}

TEST(Scheduler, TheNewestRequestPreemptsItselfRatherThanAnOlderOne) {
  // P=2, 3 pages. a (2 tokens) fills a page and holds back the second for its first decode; b
  // gets the third page for part of its prompt. Next step a takes its held page, and b, the
  // newest, needs a page with none free: it gives its own back instead of taking a's.
  FakeEngine engine(limits(2, 3, 8, 64));
  Request* a = engine.add_prompt_of(2, 3);
  Request* b = engine.add_prompt_of(3, 2);
  std::vector<ScheduledWork> work = engine.step();
  ASSERT_EQ(span_of(work, a), (Span{0, 2}));
  ASSERT_EQ(span_of(work, b), (Span{0, 2}));
  work = engine.step();
  EXPECT_EQ(engine.scheduler().preempted_last_step(), (std::vector<Request*>{b}));
  EXPECT_EQ(span_of(work, a), (Span{2, 1}));
  EXPECT_EQ(span_of(work, b).count, 0);
  EXPECT_EQ(b->num_computed, 0);
  EXPECT_EQ(engine.scheduler().running(), (std::vector<Request*>{a}));
  engine.run_until_idle(100);
  EXPECT_EQ(b->state, RequestState::kFinished);
}

TEST(Scheduler, TheOnlyRequestLeftPreemptsItselfWhenAPageIsHeldElsewhere) {
  // A page held outside the scheduler (as a prefix cache would) leaves the lone request without
  // room: it gives its pages back rather than touch a page it does not own.
  FakeEngine engine(limits(1, 3, 8, 64));
  Request* a = engine.add_prompt_of(2, 2);
  engine.step();
  int32_t outside = engine.hold_page_outside();
  std::vector<ScheduledWork> work = engine.step();
  EXPECT_TRUE(work.empty());
  EXPECT_EQ(engine.scheduler().preempted_last_step(), (std::vector<Request*>{a}));
  EXPECT_EQ(engine.pool().num_free(), 2);
  EXPECT_EQ(engine.pool().refcount(outside), 1);
  engine.release_pages_outside();
  engine.run_until_idle(50);
  EXPECT_EQ(a->state, RequestState::kFinished);
  EXPECT_EQ(a->output.size(), 2u);
}

TEST(Scheduler, AddRejectsAPromptThatCanNeverFit) {
  SchedulerLimits l = limits(4, 3, 8, 64);
  Scheduler scheduler(l);
  Request fits;
  fits.prompt.assign(11, 7);  // 11 + 1 tokens = 3 pages
  EXPECT_NO_THROW(scheduler.add(&fits));
  Request too_long;
  too_long.id = 42;
  too_long.prompt.assign(12, 7);
  try {
    scheduler.add(&too_long);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    std::string message = e.what();
    EXPECT_NE(message.find("request 42"), std::string::npos) << message;
    EXPECT_NE(message.find("prompt of 12 tokens"), std::string::npos) << message;
    EXPECT_NE(message.find("at most 11 prompt tokens"), std::string::npos) << message;
  }
  EXPECT_EQ(scheduler.num_waiting(), 1u);
  Request empty;
  EXPECT_THROW(scheduler.add(&empty), Error);
}

TEST(Scheduler, RejectsLimitsThatCannotWork) {
  EXPECT_THROW(Scheduler(limits(3, 8, 4, 16)), Error);   // page size not a power of two
  EXPECT_THROW(Scheduler(limits(4, 0, 4, 16)), Error);   // no pages
  EXPECT_THROW(Scheduler(limits(4, 8, 0, 16)), Error);   // nothing may run
  EXPECT_THROW(Scheduler(limits(4, 8, 32, 16)), Error);  // budget below one token per request
  EXPECT_NO_THROW(Scheduler(limits(1, 1, 1, 1)));
}

TEST(Scheduler, FinishReleasesPagesOfARunningOrWaitingRequest) {
  FakeEngine engine(limits(4, 8, 1, 64));
  Request* a = engine.add_prompt_of(9, 10);
  Request* b = engine.add_prompt_of(3, 10);
  engine.step();
  EXPECT_EQ(engine.pool().num_free(), 5);
  engine.scheduler().finish(a, engine.pool());
  EXPECT_EQ(a->state, RequestState::kFinished);
  EXPECT_EQ(engine.pool().num_free(), 8);
  EXPECT_TRUE(engine.scheduler().running().empty());
  engine.scheduler().finish(b, engine.pool());  // still waiting: a client abort
  EXPECT_EQ(b->state, RequestState::kFinished);
  EXPECT_TRUE(engine.scheduler().idle());
  engine.scheduler().finish(b, engine.pool());  // finishing twice is harmless
  EXPECT_EQ(engine.pool().num_free(), 8);
}

TEST(Scheduler, FinishesARequestWhoseNextTokenOutgrowsThePool) {
  // P=2, 2 pages hold 4 tokens. Without an engine-side length limit, a request that keeps
  // generating would eventually need a third page that does not exist.
  SchedulerLimits l = limits(2, 2, 4, 16);
  PagePool pool(2);
  Scheduler scheduler(l);
  Request r;
  r.prompt = {1, 2};
  scheduler.add(&r);
  for (int s = 0; s < 10 && r.state != RequestState::kFinished; ++s) {
    for (const ScheduledWork& w : scheduler.schedule(pool)) {
      if (w.samples()) w.request->output.push_back(0);
    }
  }
  ASSERT_EQ(r.state, RequestState::kFinished);
  EXPECT_EQ(scheduler.out_of_room_last_step(), (std::vector<Request*>{&r}));
  EXPECT_EQ(r.seq_len(), 5);  // tokens 0..3 computed, the 5th would need a third page
  EXPECT_EQ(pool.num_free(), 2);
  EXPECT_TRUE(scheduler.idle());
}

// --- Prefill first ------------------------------------------------------------------------------

SchedulerLimits prefill_first(SchedulerLimits l) {
  l.prefill_first = true;
  return l;
}

TEST(SchedulerPrefillFirst, PrefillsEveryPromptBeforeAnyDecodeThenDecodesInLockstep) {
  // A budget of 64 fits one 64-token prompt per step.
  FakeEngine engine(prefill_first(limits(16, 64, 8, 64)));
  std::vector<Request*> rs;
  for (int i = 0; i < 5; ++i) rs.push_back(engine.add_prompt_of(64, 3));
  for (size_t s = 0; s < rs.size(); ++s) {
    std::vector<ScheduledWork> work = engine.step();
    ASSERT_EQ(work.size(), 1u) << "step " << s << ": a decode ran before every prompt was in";
    EXPECT_EQ(work[0].request, rs[s]);
    EXPECT_EQ(span_of(work, rs[s]), (Span{0, 64}));
    EXPECT_EQ(engine.sampled_last_step(), (std::set<Request*>{rs[s]}));
  }
  // Every prompt is in: all decode together, and finish together.
  for (int32_t k = 0; k < 2; ++k) {
    std::vector<ScheduledWork> work = engine.step();
    ASSERT_EQ(work.size(), rs.size());
    for (Request* r : rs) EXPECT_EQ(span_of(work, r), (Span{64 + k, 1}));
  }
  for (Request* r : rs) EXPECT_EQ(r->state, RequestState::kFinished);
  EXPECT_TRUE(engine.scheduler().idle());

  // The default policy decodes the first request while the second is still prefilling.
  FakeEngine baseline(limits(16, 64, 8, 64));
  Request* first = baseline.add_prompt_of(64, 3);
  Request* second = baseline.add_prompt_of(64, 3);
  baseline.step();
  std::vector<ScheduledWork> work = baseline.step();
  EXPECT_EQ(span_of(work, first), (Span{64, 1}));
  EXPECT_EQ(span_of(work, second), (Span{0, 63}));
}

TEST(SchedulerPrefillFirst, ANewArrivalsPrefillPausesTheDecodes) {
  FakeEngine engine(prefill_first(limits(4, 64, 8, 16)));
  Request* a = engine.add_prompt_of(4, 10);
  Request* b = engine.add_prompt_of(4, 10);
  std::vector<ScheduledWork> work = engine.step();
  EXPECT_EQ(span_of(work, a), (Span{0, 4}));
  EXPECT_EQ(span_of(work, b), (Span{0, 4}));
  work = engine.step();
  EXPECT_EQ(span_of(work, a), (Span{4, 1}));
  EXPECT_EQ(span_of(work, b), (Span{4, 1}));
  Request* c = engine.add_prompt_of(20, 2);
  work = engine.step();  // c's first chunk, alone
  ASSERT_EQ(work.size(), 1u);
  EXPECT_EQ(span_of(work, c), (Span{0, 16}));
  work = engine.step();  // the rest of c's prompt, still alone
  ASSERT_EQ(work.size(), 1u);
  EXPECT_EQ(span_of(work, c), (Span{16, 4}));
  work = engine.step();  // then all three decode
  EXPECT_EQ(span_of(work, a), (Span{5, 1}));
  EXPECT_EQ(span_of(work, b), (Span{5, 1}));
  EXPECT_EQ(span_of(work, c), (Span{20, 1}));
  engine.run_until_idle(100);
}

TEST(SchedulerPrefillFirst, APromptsLastTokenWaitsLikeADecode) {
  // A budget of 8 leaves a's 9th prompt token for later; it is computed with the decodes, after
  // b's prompt, which is prefill work.
  FakeEngine engine(prefill_first(limits(4, 64, 8, 8)));
  Request* a = engine.add_prompt_of(9, 2);
  Request* b = engine.add_prompt_of(8, 2);
  std::vector<ScheduledWork> work = engine.step();
  ASSERT_EQ(work.size(), 1u);
  EXPECT_EQ(span_of(work, a), (Span{0, 8}));
  work = engine.step();
  ASSERT_EQ(work.size(), 1u);
  EXPECT_EQ(span_of(work, b), (Span{0, 8}));
  EXPECT_EQ(a->num_computed, 8);
  EXPECT_TRUE(a->output.empty());
  work = engine.step();
  EXPECT_EQ(span_of(work, a), (Span{8, 1}));
  EXPECT_EQ(span_of(work, b), (Span{8, 1}));
  EXPECT_EQ(engine.sampled_last_step(), (std::set<Request*>{a, b}));
  engine.run_until_idle(100);
  EXPECT_EQ(a->output.size(), 2u);
  EXPECT_EQ(b->output.size(), 2u);
}

TEST(SchedulerPrefillFirst, DecodesRunWhenPagesBlockAdmission) {
  // P=4, 6 pages. a and b take 2 pages each and admission holds back a page for each one's first
  // decode, so c cannot be admitted: the steps fall back to decoding (never empty) until a
  // finishes and frees its pages, and then c's prefill comes first.
  FakeEngine engine(prefill_first(limits(4, 6, 8, 64)));
  Request* a = engine.add_prompt_of(8, 4);
  Request* b = engine.add_prompt_of(8, 12);
  Request* c = engine.add_prompt_of(8, 2);
  std::vector<ScheduledWork> work = engine.step();
  EXPECT_EQ(span_of(work, a), (Span{0, 8}));
  EXPECT_EQ(span_of(work, b), (Span{0, 8}));
  EXPECT_EQ(c->state, RequestState::kWaiting);
  for (int32_t k = 0; k < 3; ++k) {
    work = engine.step();
    ASSERT_EQ(work.size(), 2u) << "decode step " << k;
    EXPECT_EQ(span_of(work, a), (Span{8 + k, 1}));
    EXPECT_EQ(span_of(work, b), (Span{8 + k, 1}));
    EXPECT_TRUE(engine.scheduler().preempted_last_step().empty());
  }
  EXPECT_EQ(a->state, RequestState::kFinished);
  work = engine.step();  // a's pages are free: c is admitted, b's decode waits
  ASSERT_EQ(work.size(), 1u);
  EXPECT_EQ(span_of(work, c), (Span{0, 8}));
  while (!engine.scheduler().idle()) {
    ASSERT_LT(engine.steps(), 100);
    ASSERT_FALSE(engine.step().empty()) << "empty step " << engine.steps();
  }
  EXPECT_EQ(b->output.size(), 12u);
  EXPECT_EQ(c->output.size(), 2u);
  EXPECT_EQ(engine.total_preemptions(), 0);
}

TEST(SchedulerPrefillFirst, APromptChunkLeavesAWaitingDecodeItsNextPage) {
  // P=4, 3 pages. a's 4-token prompt fills a page; b gets the one page admission does not hold
  // back for a's first decode. Next step b's chunk would need that page: it waits instead, the
  // step decodes a into it, and b (newest, with no page) preempts itself as it would by default.
  FakeEngine engine(prefill_first(limits(4, 3, 8, 64)));
  Request* a = engine.add_prompt_of(4, 3);
  Request* b = engine.add_prompt_of(8, 1);
  std::vector<ScheduledWork> work = engine.step();
  EXPECT_EQ(span_of(work, a), (Span{0, 4}));
  EXPECT_EQ(span_of(work, b), (Span{0, 4}));
  work = engine.step();
  ASSERT_EQ(work.size(), 1u);
  EXPECT_EQ(span_of(work, a), (Span{4, 1}));
  EXPECT_EQ(engine.scheduler().preempted_last_step(), (std::vector<Request*>{b}));
  engine.run_until_idle(100);
  EXPECT_EQ(a->output.size(), 3u);
  EXPECT_EQ(b->output.size(), 1u);
}

}  // namespace
}  // namespace vortex
