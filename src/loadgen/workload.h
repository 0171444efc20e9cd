// The requests an online benchmark sends, independent of any endpoint's body format, and the
// random workload (prompts of random tokens or words, lengths drawn from a range).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/json_file.h"
#include "core/rng.h"

namespace vortex::loadgen {

enum class PromptKind { kIds, kText, kMessages };

struct BenchRequest {
  std::string where;  // "random prompt 3" or "data.jsonl:7", for errors about this request
  PromptKind kind = PromptKind::kText;
  std::vector<int32_t> prompt_ids;  // kIds
  std::string prompt_text;          // kText
  Json messages;                    // kMessages: an array of {"role", "content"}
  int32_t max_tokens = 1;
};

struct RandomWorkload {
  int64_t num_prompts = 1000;
  int32_t input_len = 1024, output_len = 128;
  double range_ratio = 1.0;  // lengths uniform in [len * ratio, len]
  // Token-id prompts draw ids uniformly from [0, vocab_size): the servers' tokenizers are not
  // known here, and every model's vocabulary holds the low ids.
  int32_t vocab_size = 2048;
  PromptKind kind = PromptKind::kIds;  // kIds, or kMessages of random words (chat endpoints)
  uint64_t seed = 1;
};

// Uniform in [max(1, floor(len * ratio)), len]; ratio in [0, 1], len >= 1.
int32_t sample_length(Rng& rng, int32_t len, double ratio);

// `w.num_prompts` requests, deterministic for the seed. Word prompts hold input_len words of a
// list of common English words that tokenizers keep whole, so they come near input_len tokens
// (plus the chat template's).
std::vector<BenchRequest> random_requests(const RandomWorkload& w);

}  // namespace vortex::loadgen
