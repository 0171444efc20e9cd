// Drives an online benchmark: one sender thread releases requests at their arrival times and a
// pool of workers runs them, at most max_concurrency at once. The work of one request is a
// callback, so the scheduling is tested without a server.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "loadgen/request_result.h"

namespace vortex::loadgen {

struct RunOptions {
  std::vector<double> arrival_offsets_s;  // one per request, non-decreasing
  int64_t max_concurrency = 0;            // 0 = unbounded (up to max_workers)
  // Threads when unbounded: each holds a connection, so thousands would only measure the
  // client's own contention.
  int64_t max_workers = 256;
};

// Runs request `index` on a worker's own connection; must not throw (an exception becomes a
// failed result anyway).
using SendFn = std::function<RequestResult(size_t index)>;
// Called once per worker thread, on that thread, for its SendFn.
using WorkerFactory = std::function<SendFn()>;
// Called after each request finishes with the number finished so far (serialised).
using OnFinished = std::function<void(int64_t finished)>;

struct RunOutcome {
  std::vector<RequestResult> results;  // by request index; start_s/end_s set
  double duration_s = 0;               // from the first send to the last request's end
  int64_t workers = 0;                 // the most requests that could be in flight
  int64_t peak_in_flight = 0;
};

// Number of worker threads for n requests.
int64_t worker_count(int64_t n, int64_t max_concurrency, int64_t max_workers);

RunOutcome run_load(const RunOptions& options, const WorkerFactory& make_worker,
                    const OnFinished& on_finished);

}  // namespace vortex::loadgen
