// What one benchmark request measured. Times are seconds; a failed request keeps its error and
// is left out of every latency figure.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace vortex::loadgen {

struct RequestResult {
  bool ok = false;
  std::string error;                 // when !ok: "HTTP 500: ...", "connection failed: ...", ...
  double start_s = 0, end_s = 0;     // since the benchmark started (set by the runner)
  double ttft_s = -1;                // until the first content chunk; < 0 when none came
  double e2e_s = 0;                  // until the end of the stream
  std::vector<double> chunk_gaps_s;  // between consecutive content chunks
  int64_t content_chunks = 0;
  // From the server's usage / meta_info when it sent one (`*_from_server`), else output tokens
  // are the content chunks and input tokens the prompt's ids (0 for a text prompt).
  int64_t output_tokens = 0, input_tokens = 0;
  bool output_from_server = false, input_from_server = false;
};

}  // namespace vortex::loadgen
