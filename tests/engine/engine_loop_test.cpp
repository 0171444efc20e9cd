// EngineLoop: the engine on its own thread, fed by many threads. Every test synchronises through
// the events themselves (condition variables), never through sleeps: where a test needs the loop
// to stand still at a known point, a request's callback blocks there until the test lets it go.
#include "engine/engine_loop.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

#include "core/error.h"
#include "core/rng.h"
#include "engine/loaded_model.h"
#include "engine/sparse_decode.h"

namespace vortex {
namespace {

using Clock = std::chrono::steady_clock;

const LoadedModel& tiny_qwen3() {
  static const LoadedModel m =
      load_model(std::string(VORTEX_SOURCE_DIR) + "/tests/data/models/tiny-qwen3", {});
  return m;
}

// A one-shot flag another thread can wait for.
class Latch {
 public:
  void set() {
    std::lock_guard<std::mutex> lock(mu_);
    set_ = true;
    cv_.notify_all();
  }
  void wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return set_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool set_ = false;
};

// What one request heard. `on_token` (optional) runs on the loop thread for each kToken event
// with the number of sampled tokens so far, before the event is recorded; it may block.
class Heard {
 public:
  std::function<void(int tokens)> on_token;

  std::function<void(RequestEvent&&)> callback() {
    return [this](RequestEvent&& e) {
      if (e.kind == RequestEvent::Kind::kToken) {
        if (e.token >= 0) ++sampled_;
        if (on_token && e.token >= 0) on_token(sampled_);
      }
      std::lock_guard<std::mutex> lock(mu_);
      if (e.kind == RequestEvent::Kind::kFinished) {
        ++finished_count_;
        finished_ = std::move(e);
        cv_.notify_all();
      } else {
        EXPECT_EQ(finished_count_, 0) << "a token after the end";
        tokens_.push_back(std::move(e));
      }
    };
  }
  const RequestEvent& wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return finished_.has_value(); });
    return *finished_;
  }
  // Read after wait() (or after shutdown returned).
  bool finished() const { return finished_.has_value(); }
  int finished_count() const { return finished_count_; }
  const RequestEvent& result() const { return *finished_; }
  std::vector<int32_t> token_ids() const {
    std::vector<int32_t> ids;
    for (const RequestEvent& e : tokens_) {
      if (e.token >= 0) ids.push_back(e.token);
    }
    return ids;
  }
  std::vector<double> logprobs() const {
    std::vector<double> lp;
    for (const RequestEvent& e : tokens_) {
      if (e.token >= 0) lp.push_back(e.logprob);
    }
    return lp;
  }
  std::string text() const {
    std::string t;
    for (const RequestEvent& e : tokens_) t += e.text;
    return t;
  }
  const std::vector<RequestEvent>& events() const { return tokens_; }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int sampled_ = 0;  // loop thread only
  std::vector<RequestEvent> tokens_;
  std::optional<RequestEvent> finished_;
  int finished_count_ = 0;
};

GenerationParams greedy(int32_t max_tokens) {
  GenerationParams gp;
  gp.max_tokens = max_tokens;
  gp.ignore_eos = true;
  return gp;
}

LoopRequest request(std::vector<int32_t> prompt, GenerationParams params, Heard& heard) {
  LoopRequest r;
  r.prompt = std::move(prompt);
  r.params = std::move(params);
  r.on_event = heard.callback();
  return r;
}

std::unique_ptr<EngineLoop> start(EngineOptions eo = {}, EngineLoopOptions lo = {}) {
  return std::make_unique<EngineLoop>(std::make_unique<Engine>(tiny_qwen3(), eo), lo);
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(EngineLoop, HistogramCountsAreCumulative) {
  LatencyHistogram h({1.0, 2.0});
  h.observe(0.5);
  h.observe(1.5);
  h.observe(2.0);
  h.observe(7.0);
  EXPECT_EQ(h.counts, (std::vector<int64_t>{1, 3, 4}));
  EXPECT_EQ(h.count, 4);
  EXPECT_DOUBLE_EQ(h.sum, 11.0);
  EXPECT_TRUE(std::is_sorted(kTtftBounds.begin(), kTtftBounds.end()));
  EXPECT_TRUE(std::is_sorted(kInterTokenBounds.begin(), kInterTokenBounds.end()));
  EXPECT_TRUE(std::is_sorted(kE2eBounds.begin(), kE2eBounds.end()));
}

// The loop serves exactly what the engine computes: same tokens, logprobs and text as
// run_to_completion, whatever the arrival order does to the batches.
TEST(EngineLoop, StreamsEqualRunToCompletion) {
  const LoadedModel& m = tiny_qwen3();
  Rng rng(11);
  std::vector<std::vector<int32_t>> prompts;
  std::vector<int32_t> max_tokens;
  for (int i = 0; i < 6; ++i) {
    std::vector<int32_t> p(1 + rng.next_u64() % 60);
    for (int32_t& t : p) t = static_cast<int32_t>(rng.next_u64() % m.config.vocab_size);
    prompts.push_back(p);
    max_tokens.push_back(1 + static_cast<int32_t>(rng.next_u64() % 30));
  }
  EngineOptions eo;
  eo.max_step_tokens = 64;  // chunked prefill and mixed batches
  Engine reference(m, eo);
  for (size_t i = 0; i < prompts.size(); ++i)
    reference.add_request(prompts[i], greedy(max_tokens[i]));
  std::vector<GenerationResult> expected = reference.run_to_completion();

  std::vector<Heard> heard(prompts.size());
  auto loop = start(eo);
  std::vector<int64_t> ids;
  for (size_t i = 0; i < prompts.size(); ++i) {
    ids.push_back(loop->submit(request(prompts[i], greedy(max_tokens[i]), heard[i])));
  }
  for (size_t i = 0; i < prompts.size(); ++i) {
    const RequestEvent& done = heard[i].wait();
    EXPECT_EQ(done.result.id, ids[i]);
    EXPECT_EQ(done.result.finish_reason, FinishReason::kLength);
    EXPECT_TRUE(done.abort_reason.empty());
    EXPECT_TRUE(done.error.empty());
    EXPECT_EQ(done.result.token_ids, expected[i].token_ids) << i;
    EXPECT_EQ(done.result.logprobs, expected[i].logprobs) << i;
    EXPECT_EQ(heard[i].token_ids(), expected[i].token_ids) << i;
    EXPECT_EQ(heard[i].logprobs(), expected[i].logprobs) << i;
    EXPECT_EQ(heard[i].text(), expected[i].text) << i;
    EXPECT_EQ(done.result.text, expected[i].text) << i;
  }
  loop->shutdown(false);
  for (const Heard& h : heard) EXPECT_EQ(h.finished_count(), 1);
}

TEST(EngineLoop, ManyThreadsSubmittingAllFinish) {
  const int kThreads = 8, kEach = 8;
  auto loop = start();
  std::vector<Heard> heard(kThreads * kEach);
  std::vector<int64_t> ids(heard.size(), -1);
  auto tokens_of = [](int k) { return 1 + k % 7; };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        const int k = t * kEach + i;
        ids[k] = loop->submit(request({1 + k, 2, 3}, greedy(tokens_of(k)), heard[k]));
      }
    });
  }
  for (std::thread& th : threads) th.join();
  int64_t total = 0, gaps = 0;
  for (int k = 0; k < kThreads * kEach; ++k) {
    const RequestEvent& done = heard[k].wait();
    EXPECT_EQ(done.result.id, ids[k]);
    EXPECT_EQ(done.result.finish_reason, FinishReason::kLength);
    EXPECT_EQ(static_cast<int>(done.result.token_ids.size()), tokens_of(k));
    EXPECT_EQ(heard[k].token_ids(), done.result.token_ids);
    EXPECT_EQ(done.result.prompt_tokens, 3);
    total += tokens_of(k);
    gaps += tokens_of(k) - 1;
  }
  EXPECT_EQ(std::set<int64_t>(ids.begin(), ids.end()).size(), heard.size());
  loop->shutdown(false);
  EngineLoopMetrics mx = loop->metrics();
  EXPECT_EQ(mx.requests_finished, kThreads * kEach);
  EXPECT_EQ(mx.finished_by_reason["length"], kThreads * kEach);
  EXPECT_EQ(mx.generation_tokens, total);
  EXPECT_EQ(mx.prompt_tokens, 3 * kThreads * kEach);
  EXPECT_EQ(mx.requests_per_flow["dense"], kThreads * kEach);
  EXPECT_EQ(mx.ttft.count, kThreads * kEach);
  EXPECT_EQ(mx.e2e.count, kThreads * kEach);
  EXPECT_EQ(mx.inter_token.count, gaps);
  EXPECT_EQ(mx.ttft.counts.size(), kTtftBounds.size() + 1);
  EXPECT_EQ(mx.ttft.counts.back(), kThreads * kEach);
  EXPECT_EQ(mx.running, 0);
  EXPECT_EQ(mx.waiting, 0);
  EXPECT_EQ(mx.kv_pages_used, 0);
  EXPECT_GT(mx.kv_pages_total, 0);
}

TEST(EngineLoop, CancelMidGenerationAbortsAndFreesThePages) {
  auto loop = start();
  Heard h;
  Latch third_token, cancelled;
  h.on_token = [&](int n) {
    if (n != 3) return;
    third_token.set();
    cancelled.wait();  // the loop stands still until the test has cancelled
  };
  const int64_t id = loop->submit(request(std::vector<int32_t>(50, 7), greedy(1000), h));
  third_token.wait();
  loop->cancel(id);
  cancelled.set();
  const RequestEvent& done = h.wait();
  EXPECT_EQ(done.result.finish_reason, FinishReason::kAbort);
  EXPECT_EQ(done.abort_reason, "cancelled");
  EXPECT_EQ(done.result.token_ids.size(), 3u);  // aborted before the next step
  EXPECT_EQ(h.token_ids(), done.result.token_ids);
  loop->cancel(id);    // idempotent
  loop->cancel(9999);  // unknown: a no-op
  loop->shutdown(false);
  EngineLoopMetrics mx = loop->metrics();
  EXPECT_EQ(mx.kv_pages_used, 0);
  EXPECT_EQ(mx.running, 0);
  EXPECT_EQ(mx.finished_by_reason["abort"], 1);
  EXPECT_EQ(h.finished_count(), 1);
}

TEST(EngineLoop, DeadlinesAbortTheRequest) {
  auto loop = start();
  Heard past;
  LoopRequest r = request({1, 2, 3}, greedy(100), past);
  r.deadline = Clock::now() - std::chrono::seconds(1);
  loop->submit(std::move(r));
  const RequestEvent& expired = past.wait();
  EXPECT_EQ(expired.result.finish_reason, FinishReason::kAbort);
  EXPECT_EQ(expired.abort_reason, "deadline");
  EXPECT_TRUE(expired.result.token_ids.empty());
  EXPECT_EQ(expired.result.prompt_tokens, 3);

  // A deadline that passes while the request runs: the first token's callback holds the loop
  // until then (time must pass for a deadline; this waits for the clock, not for another
  // thread), and the request ends before its next step.
  Heard running;
  const Clock::time_point deadline = Clock::now() + std::chrono::milliseconds(100);
  running.on_token = [&](int n) {
    if (n == 1) std::this_thread::sleep_until(deadline + std::chrono::milliseconds(1));
  };
  r = request({4, 5, 6}, greedy(1000), running);
  r.deadline = deadline;
  loop->submit(std::move(r));
  const RequestEvent& late = running.wait();
  EXPECT_EQ(late.abort_reason, "deadline");
  // One token, unless the loop was so slow that the deadline passed before the first step.
  EXPECT_LE(late.result.token_ids.size(), 1u);
  loop->shutdown(false);
  EXPECT_EQ(loop->metrics().kv_pages_used, 0);
}

TEST(EngineLoop, QueueFullThenRoomAgain) {
  EngineOptions eo;
  eo.max_batch = 1;  // everything after the first request waits
  EngineLoopOptions lo;
  lo.max_waiting = 2;
  auto loop = start(eo, lo);
  Heard a, b, c, e;
  Latch second_token, go;
  a.on_token = [&](int n) {
    if (n != 2) return;
    second_token.set();
    go.wait();
  };
  loop->submit(request({1, 2}, greedy(5), a));
  second_token.wait();  // a runs; nothing waits
  loop->submit(request({3, 4}, greedy(2), b));
  loop->submit(request({5, 6}, greedy(2), c));
  Heard refused;
  EXPECT_THROW(loop->submit(request({7, 8}, greedy(2), refused)), QueueFullError);
  go.set();
  for (Heard* h : {&a, &b, &c}) EXPECT_EQ(h->wait().result.finish_reason, FinishReason::kLength);
  EXPECT_NO_THROW(loop->submit(request({9}, greedy(2), e)));
  EXPECT_EQ(e.wait().result.token_ids.size(), 2u);
  loop->shutdown(false);
  EXPECT_FALSE(refused.finished());
}

TEST(EngineLoop, ValidationErrorsNameTheFieldAndSubmitAfterShutdownThrows) {
  auto loop = start();
  Heard h;
  EXPECT_NE(error_of([&] { loop->submit(request({1}, greedy(0), h)); }).find("max_tokens"),
            std::string::npos);
  GenerationParams gp = greedy(3);
  gp.top_logprobs = 21;
  EXPECT_NE(error_of([&] { loop->submit(request({1}, gp, h)); }).find("top_logprobs"),
            std::string::npos);
  gp = greedy(3);
  gp.flow = "quest";
  EXPECT_NE(error_of([&] { loop->submit(request({1}, gp, h)); }).find("flow"), std::string::npos);
  EXPECT_NE(error_of([&] {
              loop->submit(request({1, 99999}, greedy(3), h));
            }).find("prompt token 1 has id 99999"),
            std::string::npos);
  EXPECT_NE(error_of([&] { loop->submit(request({}, greedy(3), h)); }).find("prompt"),
            std::string::npos);
  EXPECT_TRUE(loop->accepting());
  loop->shutdown(false);
  EXPECT_FALSE(loop->accepting());
  std::string error = error_of([&] { loop->submit(request({1}, greedy(3), h)); });
  EXPECT_NE(error.find("shutting down"), std::string::npos) << error;
  EXPECT_FALSE(h.finished());
  loop->shutdown(true);  // again: a no-op
}

TEST(EngineLoop, RequestsPerFlowCountTheEnginesFlow) {
  EngineOptions eo;
  eo.sparse = std::make_shared<const SparseAttentionConfig>(
      load_sparse_attention(std::string(VORTEX_SOURCE_DIR) + "/flows/block_topk.py", {},
                            tiny_qwen3().config, eo.page_size, false));
  auto loop = start(eo);
  EXPECT_EQ(loop->flow_name(), "block_topk");
  Heard a, b, dense, refused;
  GenerationParams gp = greedy(2);
  loop->submit(request({1, 2}, gp, a));
  gp.flow = "block_topk";
  loop->submit(request({1, 2}, gp, b));
  gp.flow = "dense";
  loop->submit(request({1, 2}, gp, dense));
  gp.flow = "quest";
  EXPECT_NE(error_of([&] { loop->submit(request({1}, gp, refused)); }).find("no flow named"),
            std::string::npos);
  a.wait();
  b.wait();
  dense.wait();
  loop->shutdown(false);
  EngineLoopMetrics mx = loop->metrics();
  EXPECT_EQ(mx.requests_per_flow.size(), 2u);
  EXPECT_EQ(mx.requests_per_flow["block_topk"], 2);
  EXPECT_EQ(mx.requests_per_flow["dense"], 1);
}

// A request checked while its flow was loaded, whose flow is removed before the loop admits it:
// it ends as an invalid request naming the flow, not as an engine failure, and the loop goes on.
TEST(EngineLoop, AFlowRemovedBeforeAdmissionInvalidatesOnlyItsRequest) {
  auto loop = start();
  loop->add_flow(std::make_shared<const SparseAttentionConfig>(load_sparse_attention(
                     std::string(VORTEX_SOURCE_DIR) + "/flows/block_topk.py", {},
                     tiny_qwen3().config, EngineOptions{}.page_size, false)),
                 "bt");
  Heard running, late, after;
  GenerationParams named = greedy(2);
  named.flow = "bt";
  std::thread remover;
  // On the loop thread, while the loop is inside a step: submit a request naming "bt", then
  // have another thread remove "bt"; both reach the loop at its next turn, and flow changes
  // run before requests are admitted.
  running.on_token = [&](int tokens) {
    if (tokens != 1) return;
    loop->submit(request({4, 5, 6}, named, late));
    remover = std::thread([&] { loop->remove_flow("bt"); });
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  };
  loop->submit(request({1, 2, 3}, greedy(4), running));
  const RequestEvent& e = late.wait();
  remover.join();
  EXPECT_EQ(e.result.finish_reason, FinishReason::kAbort);
  EXPECT_EQ(e.abort_reason, "invalid_request");
  EXPECT_NE(e.error.find("no flow named 'bt'"), std::string::npos) << e.error;
  EXPECT_EQ(running.wait().abort_reason, "");
  loop->submit(request({7, 8}, greedy(2), after));
  EXPECT_EQ(after.wait().result.finish_reason, FinishReason::kLength);
  EXPECT_TRUE(loop->accepting());
}

TEST(EngineLoop, ShutdownWithoutAbortLetsRequestsFinish) {
  auto loop = start();
  std::vector<Heard> heard(4);
  for (size_t i = 0; i < heard.size(); ++i) {
    loop->submit(request({static_cast<int32_t>(10 + i), 3}, greedy(8), heard[i]));
  }
  loop->shutdown(false);
  for (const Heard& h : heard) {
    ASSERT_TRUE(h.finished());  // heard before shutdown returned
    EXPECT_EQ(h.result().result.finish_reason, FinishReason::kLength);
    EXPECT_EQ(h.result().result.token_ids.size(), 8u);
  }
}

TEST(EngineLoop, ShutdownWithAbortEndsRequestsInFlight) {
  auto loop = start();
  Heard a, b;
  Latch first_token, go;
  a.on_token = [&](int n) {
    if (n != 1) return;
    first_token.set();
    go.wait();
  };
  loop->submit(request({1, 2, 3}, greedy(1000), a));
  loop->submit(request({4, 5, 6}, greedy(1000), b));
  first_token.wait();
  std::thread stopper([&] { loop->shutdown(true); });
  // shutdown() has begun once the loop stops accepting; then the loop may go on.
  while (loop->accepting()) std::this_thread::yield();
  go.set();
  stopper.join();
  for (Heard* h : {&a, &b}) {
    ASSERT_TRUE(h->finished());
    EXPECT_EQ(h->result().result.finish_reason, FinishReason::kAbort);
    EXPECT_EQ(h->result().abort_reason, "shutdown");
    EXPECT_LE(h->result().result.token_ids.size(), 1u);
  }
  EXPECT_EQ(a.result().result.token_ids.size(), 1u);
  EXPECT_EQ(loop->metrics().kv_pages_used, 0);
}

TEST(EngineLoop, DestructorWithRequestsInFlightEndsThem) {
  std::vector<Heard> heard(6);  // outlives the loop
  {
    auto loop = start();
    for (size_t i = 0; i < heard.size(); ++i) {
      loop->submit(request({static_cast<int32_t>(i + 1), 9}, greedy(2000), heard[i]));
    }
  }
  for (const Heard& h : heard) {
    ASSERT_TRUE(h.finished());
    EXPECT_EQ(h.finished_count(), 1);
    EXPECT_EQ(h.result().result.finish_reason, FinishReason::kAbort);
    EXPECT_EQ(h.result().abort_reason, "shutdown");
  }
}

TEST(EngineLoop, TopLogprobsReachTheEvents) {
  auto loop = start();
  Heard h;
  GenerationParams gp = greedy(4);
  gp.top_logprobs = 3;
  loop->submit(request({1, 2, 3}, gp, h));
  const RequestEvent& done = h.wait();
  ASSERT_EQ(done.result.top_logprobs.size(), 4u);
  size_t n = 0;
  for (const RequestEvent& e : h.events()) {
    if (e.token < 0) continue;
    ASSERT_EQ(e.top_logprobs.size(), 3u);
    EXPECT_EQ(e.top_logprobs[0].token, e.token);
    EXPECT_EQ(e.top_logprobs[0].logprob, e.logprob);
    EXPECT_GE(e.top_logprobs[0].logprob, e.top_logprobs[1].logprob);
    EXPECT_GE(e.top_logprobs[1].logprob, e.top_logprobs[2].logprob);
    EXPECT_EQ(done.result.top_logprobs[n][2].token, e.top_logprobs[2].token);
    ++n;
  }
  EXPECT_EQ(n, 4u);
  loop->shutdown(false);
}

TEST(EngineLoop, ACallbackThatThrowsCancelsItsRequestOnly) {
  auto loop = start();
  Heard bad, good;
  bad.on_token = [](int) { throw std::runtime_error("client gone"); };
  loop->submit(request({1, 2}, greedy(500), bad));
  loop->submit(request({3, 4}, greedy(5), good));
  EXPECT_EQ(bad.wait().abort_reason, "cancelled");
  EXPECT_EQ(good.wait().result.finish_reason, FinishReason::kLength);
  EXPECT_EQ(good.result().result.token_ids.size(), 5u);
  loop->shutdown(false);
  EXPECT_EQ(loop->metrics().kv_pages_used, 0);
}

TEST(EngineLoop, RefusesOptionsThatCannotWork) {
  EngineLoopOptions lo;
  lo.max_waiting = 0;
  EXPECT_NE(error_of([&] { start({}, lo); }).find("max_waiting"), std::string::npos);
}

}  // namespace
}  // namespace vortex
