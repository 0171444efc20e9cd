// Turning one row of logits into the next token. Each request owns its Rng, so what it samples
// does not depend on which other requests share the batch.
#pragma once

#include <cstdint>
#include <vector>

#include "core/rng.h"

namespace vortex {

struct SamplingParams {
  float temperature = 0.0f;  // 0 = greedy (argmax, lowest id on ties)
  int32_t top_k = 0;         // 0 = off
  float top_p = 1.0f;        // 1 = off
  float min_p = 0.0f;        // 0 = off
  uint64_t seed = 0;
  // Throws vortex::Error (usage) naming the bad field.
  void validate() const;
};

// A token and its natural-log probability under the unscaled distribution.
struct TokenLogprob {
  int32_t token;
  double logprob;
};
// The most alternatives a request may ask for per step (OpenAI's top_logprobs limit).
constexpr int32_t kMaxTopLogprobs = 20;

struct SampledToken {
  int32_t token;
  // Natural-log probability of `token` under the model's unscaled distribution
  // (log_softmax of the raw logits, before temperature and filtering).
  double logprob;
  // The row's SamplingRow::top_logprobs most likely tokens (top_logprobs()); empty when 0.
  std::vector<TokenLogprob> top;
};

// Filters are applied in this order: temperature, top-k, top-p, min-p; then one draw.
// `scratch` must hold `vocab` floats (reused across calls to avoid allocation).
SampledToken sample_token(const float* logits, int32_t vocab, const SamplingParams& params,
                          Rng& rng, float* scratch);

// log_softmax(logits)[token], computed in double.
double token_logprob(const float* logits, int32_t vocab, int32_t token);

// The n (at most vocab) most likely tokens under log_softmax(logits), computed in double, most
// likely first, ties to the lower id. Every runner computes them with this one host function, so
// the alternatives a request hears do not depend on the device.
std::vector<TokenLogprob> top_logprobs(const float* logits, int32_t vocab, int32_t n);

}  // namespace vortex
