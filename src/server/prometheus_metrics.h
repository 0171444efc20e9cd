// GET /metrics: the EngineLoop's counters in Prometheus' text exposition format (version
// 0.0.4). Every name starts with "vortex:" (a colon, as vLLM's "vllm:" and SGLang's "sglang:",
// so their dashboards carry over by changing the prefix):
//   vortex:num_requests_running, vortex:num_requests_waiting        gauges
//   vortex:prompt_tokens_total, vortex:generation_tokens_total      counters
//   vortex:requests_finished_total{reason="stop"|"length"|"abort"}  counter
//   vortex:requests_total{flow="NAME"|"dense"}                     counter (admitted, per flow)
//   vortex:num_preemptions_total                                   counter
//   vortex:kv_cache_pages_total, _used, _cached (held only by the prefix cache), _free;
//   vortex:kv_cache_usage_ratio                                    gauges
//   vortex:prefix_cache_queries_total, vortex:prefix_cache_hits_total        counters (pages)
//   vortex:prefix_cache_hit_rate                                   gauge (0 before any query)
//   vortex:time_to_first_token_seconds, vortex:inter_token_latency_seconds,
//   vortex:e2e_request_latency_seconds                             histograms
#pragma once

#include <string>

#include "engine/engine_loop.h"

namespace vortex::server {

std::string prometheus_text(const EngineLoopMetrics& metrics);

// A label value with Prometheus' escapes (backslash, double quote, newline).
std::string escape_label_value(const std::string& value);

// A number as Prometheus reads it: the shortest text that reads back the same, "+Inf", "-Inf",
// "NaN".
std::string prometheus_number(double value);

}  // namespace vortex::server
