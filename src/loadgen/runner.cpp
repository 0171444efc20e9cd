#include "loadgen/runner.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>

#include "core/error.h"

namespace vortex::loadgen {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

}  // namespace

int64_t worker_count(int64_t n, int64_t max_concurrency, int64_t max_workers) {
  const int64_t limit = max_concurrency > 0 ? max_concurrency : max_workers;
  return std::max<int64_t>(1, std::min(n, limit));
}

RunOutcome run_load(const RunOptions& options, const WorkerFactory& make_worker,
                    const OnFinished& on_finished) {
  const size_t n = options.arrival_offsets_s.size();
  RunOutcome out;
  out.results.resize(n);
  out.workers = worker_count(static_cast<int64_t>(n), options.max_concurrency, options.max_workers);
  if (n == 0) return out;

  std::mutex mu;
  std::condition_variable ready;  // a request was released, or the sender is done
  std::deque<size_t> queue;
  bool all_released = false;
  int64_t in_flight = 0, finished = 0;
  const Clock::time_point start = Clock::now();
  Clock::time_point last_end = start;

  auto work = [&] {
    SendFn send;
    try {
      send = make_worker();
    } catch (const std::exception&) {
      send = nullptr;
    }
    for (;;) {
      size_t index;
      {
        std::unique_lock lock(mu);
        ready.wait(lock, [&] { return !queue.empty() || all_released; });
        if (queue.empty()) return;
        index = queue.front();
        queue.pop_front();
        out.peak_in_flight = std::max(out.peak_in_flight, ++in_flight);
      }
      const Clock::time_point begin = Clock::now();
      RequestResult r;
      try {
        if (!send) fail("could not set up the worker's connection");
        r = send(index);
      } catch (const std::exception& e) {
        r = RequestResult{};
        r.error = str_cat("internal error: ", e.what());
      }
      const Clock::time_point end = Clock::now();
      r.start_s = seconds_between(start, begin);
      r.end_s = seconds_between(start, end);
      std::lock_guard lock(mu);
      out.results[index] = std::move(r);
      --in_flight;
      last_end = std::max(last_end, end);
      ++finished;
      if (on_finished) on_finished(finished);
    }
  };

  std::vector<std::thread> workers;
  workers.reserve(static_cast<size_t>(out.workers));
  for (int64_t w = 0; w < out.workers; ++w) workers.emplace_back(work);

  // The sender: this thread sleeps until each arrival, then hands the request to the pool. A
  // request that finds every worker busy waits in the queue, as one waiting for a slot of
  // --max-concurrency does in SGLang's and vLLM's benchmarks.
  for (size_t i = 0; i < n; ++i) {
    const auto at = start + std::chrono::duration_cast<Clock::duration>(
                                std::chrono::duration<double>(options.arrival_offsets_s[i]));
    std::this_thread::sleep_until(at);
    {
      std::lock_guard lock(mu);
      queue.push_back(i);
    }
    ready.notify_one();
  }
  {
    std::lock_guard lock(mu);
    all_released = true;
  }
  ready.notify_all();
  for (std::thread& t : workers) t.join();
  out.duration_s = seconds_between(start, last_end);
  return out;
}

}  // namespace vortex::loadgen
