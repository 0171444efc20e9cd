#include "loadgen/report.h"

#include <gtest/gtest.h>

#include <limits>

namespace vortex::loadgen {
namespace {

RequestResult done(double start, double end, double ttft, int64_t out, int64_t in,
                   std::vector<double> gaps, bool from_server = true) {
  RequestResult r;
  r.ok = true;
  r.start_s = start;
  r.end_s = end;
  r.e2e_s = end - start;
  r.ttft_s = ttft;
  r.output_tokens = out;
  r.input_tokens = in;
  r.output_from_server = from_server;
  r.input_from_server = from_server;
  r.content_chunks = static_cast<int64_t>(gaps.size()) + 1;
  r.chunk_gaps_s = std::move(gaps);
  return r;
}

RequestResult failed(double end, std::string error) {
  RequestResult r;
  r.start_s = 0;
  r.end_s = end;
  r.error = std::move(error);
  return r;
}

TEST(Report, SummarisesCompletedRequestsAndTheFirstFailure) {
  RunOutcome run;
  run.duration_s = 2.0;
  run.workers = 4;
  run.peak_in_flight = 3;
  run.results = {done(0.0, 1.0, 0.2, 5, 10, {0.2, 0.2, 0.2, 0.2}),
                 done(0.5, 2.0, 0.5, 3, 20, {0.5, 0.5}, /*from_server=*/false),
                 failed(1.5, "HTTP 500: later"), failed(0.7, "HTTP 503: first")};
  BenchSetup setup;
  setup.url = "http://h:1";
  setup.endpoint = "/v1/completions";
  setup.request_rate = std::numeric_limits<double>::infinity();
  BenchReport r = summarize_run(run, setup);
  EXPECT_EQ(r.completed, 2);
  EXPECT_EQ(r.failed, 2);
  EXPECT_EQ(r.first_error, "HTTP 503: first");
  EXPECT_EQ(r.output_tokens, 8);
  EXPECT_EQ(r.input_tokens, 30);
  EXPECT_EQ(r.output_counted_by_server, 1);
  EXPECT_EQ(r.output_counted_as_chunks, 1);
  EXPECT_EQ(r.input_counted_as_ids, 1);
  EXPECT_DOUBLE_EQ(r.request_throughput(), 1.0);
  EXPECT_DOUBLE_EQ(r.output_throughput(), 4.0);
  EXPECT_DOUBLE_EQ(r.input_throughput(), 15.0);
  // TPOT: (1.0 - 0.2) / 4 = 0.2 and (1.5 - 0.5) / 2 = 0.5.
  EXPECT_EQ(r.tpot.count, 2);
  EXPECT_DOUBLE_EQ(r.tpot.mean, 0.35);
  EXPECT_EQ(r.itl.count, 6);
  EXPECT_DOUBLE_EQ(r.itl.median, 0.2);
  EXPECT_DOUBLE_EQ(r.ttft.mean, 0.35);
  EXPECT_DOUBLE_EQ(r.e2e.mean, 1.25);
  // In flight: (1.0 + 1.5 + 1.5 + 0.7) / 2.0 s.
  EXPECT_DOUBLE_EQ(r.mean_in_flight, 2.35);

  Json j = report_json(r);
  EXPECT_EQ(j["completed"], 2);
  EXPECT_EQ(j["failed"], 2);
  EXPECT_EQ(j["request_rate"], "inf");
  EXPECT_TRUE(j["max_concurrency"].is_null());
  EXPECT_DOUBLE_EQ(j["mean_tpot_ms"].get<double>(), 350.0);
  EXPECT_DOUBLE_EQ(j["total_throughput"].get<double>(), 19.0);
  EXPECT_EQ(j["first_error"], "HTTP 503: first");
  for (const char* k : {"median_ttft_ms", "p95_itl_ms", "p99_e2e_latency_ms", "concurrency"}) {
    EXPECT_TRUE(j.contains(k)) << k;
  }

  const std::string text = report_text(r);
  for (const char* s : {"Successful requests:", "Failed requests:", "HTTP 503: first",
                        "Mean TTFT (ms):", "P99 ITL (ms):", "Median TPOT (ms):",
                        "server usage (1), stream chunks (1)", "Request rate (req/s):"}) {
    EXPECT_NE(text.find(s), std::string::npos) << s << "\n" << text;
  }
}

TEST(Report, SingleTokenOutputsHaveNoTpotAndEmptySectionsSayNA) {
  RunOutcome run;
  run.duration_s = 1.0;
  run.results = {done(0, 0.5, 0.5, 1, 3, {})};
  BenchReport r = summarize_run(run, {});
  EXPECT_EQ(r.tpot.count, 0);
  EXPECT_EQ(r.itl.count, 0);
  EXPECT_NE(report_text(r).find("TPOT (ms):"), std::string::npos);
  EXPECT_NE(report_text(r).find("n/a"), std::string::npos);
}

}  // namespace
}  // namespace vortex::loadgen
