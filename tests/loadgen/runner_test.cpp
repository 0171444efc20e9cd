#include "loadgen/runner.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>

namespace vortex::loadgen {
namespace {

RequestResult success() {
  RequestResult r;
  r.ok = true;
  return r;
}

TEST(WorkerCount, BoundedByConcurrencyRequestsAndTheCap) {
  EXPECT_EQ(worker_count(100, 4, 256), 4);
  EXPECT_EQ(worker_count(3, 8, 256), 3);
  EXPECT_EQ(worker_count(1000, 0, 256), 256);
  EXPECT_EQ(worker_count(10, 0, 256), 10);
}

// Every request runs once, on its index, and never more than max_concurrency at a time.
TEST(RunLoad, RunsEachRequestOnceWithinTheConcurrencyLimit) {
  RunOptions o;
  o.arrival_offsets_s.assign(40, 0.0);
  o.max_concurrency = 3;
  std::atomic<int> in_flight{0}, peak{0}, workers{0};
  std::mutex mu;
  std::multiset<size_t> ran;
  std::vector<int64_t> finished;
  RunOutcome out = run_load(
      o,
      [&]() -> SendFn {
        ++workers;
        return [&](size_t i) {
          const int now = ++in_flight;
          int p = peak.load();
          while (now > p && !peak.compare_exchange_weak(p, now)) {
          }
          std::this_thread::sleep_for(std::chrono::microseconds(300));
          {
            std::lock_guard lock(mu);
            ran.insert(i);
          }
          --in_flight;
          RequestResult r;
          r.ok = true;
          r.output_tokens = static_cast<int64_t>(i);
          return r;
        };
      },
      [&](int64_t n) { finished.push_back(n); });
  EXPECT_EQ(workers.load(), 3);
  EXPECT_EQ(out.workers, 3);
  EXPECT_LE(peak.load(), 3);
  EXPECT_LE(out.peak_in_flight, 3);
  EXPECT_GE(out.peak_in_flight, 1);
  ASSERT_EQ(ran.size(), 40u);
  for (size_t i = 0; i < 40; ++i) EXPECT_EQ(ran.count(i), 1u);
  for (size_t i = 0; i < 40; ++i) {
    EXPECT_EQ(out.results[i].output_tokens, static_cast<int64_t>(i));
    EXPECT_LE(out.results[i].start_s, out.results[i].end_s);
    EXPECT_LE(out.results[i].end_s, out.duration_s);
  }
  ASSERT_EQ(finished.size(), 40u);
  for (size_t i = 0; i < 40; ++i) EXPECT_EQ(finished[i], static_cast<int64_t>(i + 1));
}

TEST(RunLoad, RequestsStartNoEarlierThanTheirArrival) {
  RunOptions o;
  o.arrival_offsets_s = {0.0, 0.01, 0.02, 0.05};
  RunOutcome out = run_load(
      o, [] { return SendFn([](size_t) { return success(); }); }, nullptr);
  for (size_t i = 0; i < 4; ++i) EXPECT_GE(out.results[i].start_s, o.arrival_offsets_s[i]);
  EXPECT_GE(out.duration_s, 0.05);
  EXPECT_EQ(out.workers, 4);  // unbounded: one per request under the cap
}

TEST(RunLoad, AThrowingRequestBecomesAFailedResult) {
  RunOptions o;
  o.arrival_offsets_s.assign(3, 0.0);
  o.max_concurrency = 1;
  RunOutcome out = run_load(
      o,
      [] {
        return SendFn([](size_t i) -> RequestResult {
          if (i == 1) throw std::runtime_error("boom");
          return success();
        });
      },
      nullptr);
  EXPECT_TRUE(out.results[0].ok);
  EXPECT_FALSE(out.results[1].ok);
  EXPECT_EQ(out.results[1].error, "internal error: boom");
  EXPECT_TRUE(out.results[2].ok);
}

}  // namespace
}  // namespace vortex::loadgen
