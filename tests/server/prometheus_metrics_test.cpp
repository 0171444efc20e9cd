// /metrics: the loop's snapshot in Prometheus' text format, every line well formed.
#include "server/prometheus_metrics.h"

#include <gtest/gtest.h>

#include <regex>
#include <sstream>

#include "server_test_util.h"

namespace vortex::server {
namespace {

EngineLoopMetrics sample_metrics() {
  EngineLoopMetrics m;
  m.running = 3;
  m.waiting = 2;
  m.prompt_tokens = 100;
  m.generation_tokens = 40;
  m.finished_by_reason = {{"stop", 4}, {"length", 1}};
  m.preemptions = 1;
  m.kv_pages_total = 64;
  m.kv_pages_used = 16;
  m.kv_pages_cached = 8;
  m.prefix_cache_queries = 10;
  m.prefix_cache_hits = 4;
  m.requests_per_flow = {{"block_topk", 3}, {"dense", 2}, {"odd\"name\\x\n", 1}};
  m.ttft = LatencyHistogram({0.1, 1.0});
  m.ttft.observe(0.05);
  m.ttft.observe(0.5);
  m.ttft.observe(5.0);
  m.inter_token = LatencyHistogram(kInterTokenBounds);
  m.e2e = LatencyHistogram(kE2eBounds);
  m.e2e.observe(2.0);
  return m;
}

TEST(PrometheusMetrics, EveryFigureIsExposedUnderTheVortexPrefix) {
  const std::string text = prometheus_text(sample_metrics());
  EXPECT_CONTAINS(text,
                  "# TYPE vortex:num_requests_running gauge\nvortex:num_requests_running 3\n");
  EXPECT_CONTAINS(text, "vortex:num_requests_waiting 2\n");
  EXPECT_CONTAINS(text,
                  "# TYPE vortex:prompt_tokens_total counter\nvortex:prompt_tokens_total 100\n");
  EXPECT_CONTAINS(text, "vortex:generation_tokens_total 40\n");
  EXPECT_CONTAINS(text, "vortex:requests_finished_total{reason=\"stop\"} 4\n");
  EXPECT_CONTAINS(text, "vortex:requests_finished_total{reason=\"abort\"} 0\n");
  EXPECT_CONTAINS(text, "vortex:num_preemptions_total 1\n");
  EXPECT_CONTAINS(text, "vortex:kv_cache_pages_used 16\n");
  EXPECT_CONTAINS(text, "vortex:kv_cache_pages_cached 8\n");
  EXPECT_CONTAINS(text, "vortex:kv_cache_pages_free 40\n");
  EXPECT_CONTAINS(text, "vortex:kv_cache_usage_ratio 0.25\n");
  EXPECT_CONTAINS(text, "vortex:prefix_cache_hit_rate 0.4\n");
  EXPECT_CONTAINS(text, "vortex:requests_total{flow=\"block_topk\"} 3\n");
  EXPECT_CONTAINS(text, "vortex:requests_total{flow=\"odd\\\"name\\\\x\\n\"} 1\n");
  // Histograms: cumulative buckets, +Inf equal to the count, sum and count.
  EXPECT_CONTAINS(text, "# TYPE vortex:time_to_first_token_seconds histogram\n");
  EXPECT_CONTAINS(text, "vortex:time_to_first_token_seconds_bucket{le=\"0.1\"} 1\n");
  EXPECT_CONTAINS(text, "vortex:time_to_first_token_seconds_bucket{le=\"1\"} 2\n");
  EXPECT_CONTAINS(text, "vortex:time_to_first_token_seconds_bucket{le=\"+Inf\"} 3\n");
  EXPECT_CONTAINS(text, "vortex:time_to_first_token_seconds_sum 5.55\n");
  EXPECT_CONTAINS(text, "vortex:time_to_first_token_seconds_count 3\n");
  EXPECT_CONTAINS(text, "vortex:e2e_request_latency_seconds_count 1\n");
  EXPECT_CONTAINS(text, "vortex:inter_token_latency_seconds_count 0\n");
}

TEST(PrometheusMetrics, EveryLineFollowsTheTextFormat) {
  const std::regex comment(R"(# (HELP|TYPE) vortex:[a-z0-9_]+ .+)");
  const std::regex sample(
      R"re(vortex:[a-z0-9_]+(\{[a-z]+="([^"\\\n]|\\.)*"\})? (-?[0-9.e+-]+|\+Inf|NaN))re");
  std::istringstream in(prometheus_text(sample_metrics()));
  std::string line;
  int samples = 0;
  while (std::getline(in, line)) {
    if (line[0] == '#') {
      EXPECT_TRUE(std::regex_match(line, comment)) << line;
    } else {
      EXPECT_TRUE(std::regex_match(line, sample)) << line;
      ++samples;
    }
  }
  EXPECT_GT(samples, 30);
}

TEST(PrometheusMetrics, NumbersAndLabels) {
  EXPECT_EQ(prometheus_number(0.25), "0.25");
  EXPECT_EQ(prometheus_number(3), "3");
  EXPECT_EQ(prometheus_number(1e-3), "0.001");
  EXPECT_EQ(prometheus_number(1.0 / 0.0), "+Inf");
  EXPECT_EQ(escape_label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
  // An idle loop with no histogram bounds still writes valid histograms.
  const std::string idle = prometheus_text(EngineLoopMetrics{});
  EXPECT_CONTAINS(idle, "vortex:e2e_request_latency_seconds_bucket{le=\"+Inf\"} 0\n");
  EXPECT_CONTAINS(idle, "vortex:requests_total{flow=\"dense\"} 0\n");
  EXPECT_CONTAINS(idle, "vortex:prefix_cache_hit_rate 0\n");
}

}  // namespace
}  // namespace vortex::server
