// Benchmark prompts from a JSON-lines file: one object per line with "prompt" (text, or a list of
// token ids) or "messages" (chat), and optionally "max_tokens" or "output_len".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "loadgen/workload.h"

namespace vortex::loadgen {

// Every non-blank line of `path` as a request; lines without an output length take
// `default_max_tokens`. Throws vortex::Error naming the file and line ("data.jsonl:7: \"prompt\"
// must be a string or a list of token ids").
std::vector<BenchRequest> read_dataset_file(const std::string& path, int32_t default_max_tokens);

// The first `n` of `rows`, the list repeating in order when it is shorter.
std::vector<BenchRequest> take_requests(const std::vector<BenchRequest>& rows, int64_t n);

}  // namespace vortex::loadgen
