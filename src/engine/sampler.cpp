#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "core/error.h"

namespace vortex {

void SamplingParams::validate() const {
  if (!(temperature >= 0.0f) || !std::isfinite(temperature))
    fail_usage("temperature must be >= 0 (0 means greedy), got ", temperature);
  if (top_k < 0) fail_usage("top-k must be >= 0 (0 means off), got ", top_k);
  if (!(top_p > 0.0f && top_p <= 1.0f)) fail_usage("top-p must be in (0, 1], got ", top_p);
  if (!(min_p >= 0.0f && min_p <= 1.0f)) fail_usage("min-p must be in [0, 1], got ", min_p);
}

double token_logprob(const float* logits, int32_t vocab, int32_t token) {
  double mx = -INFINITY;
  for (int32_t i = 0; i < vocab; ++i) mx = std::max(mx, static_cast<double>(logits[i]));
  double sum = 0.0;
  for (int32_t i = 0; i < vocab; ++i) sum += std::exp(static_cast<double>(logits[i]) - mx);
  return static_cast<double>(logits[token]) - mx - std::log(sum);
}

std::vector<TokenLogprob> top_logprobs(const float* logits, int32_t vocab, int32_t n) {
  n = std::clamp(n, 0, vocab);
  std::vector<TokenLogprob> top;
  if (n == 0) return top;
  // One pass keeps the n best in order (n is small: kMaxTopLogprobs); a strictly greater logit
  // is needed to pass an earlier, lower id.
  std::vector<int32_t> best;
  best.reserve(static_cast<size_t>(n) + 1);
  for (int32_t i = 0; i < vocab; ++i) {
    if (static_cast<int32_t>(best.size()) == n && !(logits[i] > logits[best.back()])) continue;
    auto at = std::upper_bound(best.begin(), best.end(), i, [&](int32_t token, int32_t other) {
      return logits[token] > logits[other];
    });
    best.insert(at, i);
    if (static_cast<int32_t>(best.size()) > n) best.pop_back();
  }
  double mx = -INFINITY;
  for (int32_t i = 0; i < vocab; ++i) mx = std::max(mx, static_cast<double>(logits[i]));
  double sum = 0.0;
  for (int32_t i = 0; i < vocab; ++i) sum += std::exp(static_cast<double>(logits[i]) - mx);
  const double log_sum = std::log(sum);
  top.reserve(best.size());
  for (int32_t t : best) top.push_back({t, static_cast<double>(logits[t]) - mx - log_sum});
  return top;
}

namespace {

int32_t argmax(const float* x, int32_t n) {
  int32_t best = 0;
  for (int32_t i = 1; i < n; ++i) {
    if (x[i] > x[best]) best = i;
  }
  return best;
}

}  // namespace

SampledToken sample_token(const float* logits, int32_t vocab, const SamplingParams& params,
                          Rng& rng, float* scratch) {
  if (params.temperature == 0.0f) {
    int32_t t = argmax(logits, vocab);
    return {t, token_logprob(logits, vocab, t), {}};
  }
  // Candidates as (index, probability) sorted by probability, descending.
  std::vector<int32_t> order(static_cast<size_t>(vocab));
  std::iota(order.begin(), order.end(), 0);
  float* probs = scratch;
  const float inv_t = 1.0f / params.temperature;
  float mx = -INFINITY;
  for (int32_t i = 0; i < vocab; ++i) mx = std::max(mx, logits[i] * inv_t);
  double sum = 0.0;
  for (int32_t i = 0; i < vocab; ++i) {
    probs[i] = std::exp(logits[i] * inv_t - mx);
    sum += probs[i];
  }
  for (int32_t i = 0; i < vocab; ++i) probs[i] = static_cast<float>(probs[i] / sum);

  int32_t keep = vocab;
  auto by_prob = [&](int32_t a, int32_t b) {
    return probs[a] > probs[b] || (probs[a] == probs[b] && a < b);
  };
  if (params.top_k > 0 && params.top_k < vocab) {
    keep = params.top_k;
    std::partial_sort(order.begin(), order.begin() + keep, order.end(), by_prob);
  } else {
    std::sort(order.begin(), order.end(), by_prob);
  }
  if (params.top_p < 1.0f) {
    double mass = 0.0;
    double total = 0.0;
    for (int32_t i = 0; i < keep; ++i) total += probs[order[i]];
    int32_t n = 0;
    while (n < keep) {
      mass += probs[order[n]] / total;
      ++n;
      if (mass >= params.top_p) break;
    }
    keep = n;
  }
  if (params.min_p > 0.0f) {
    const float floor = params.min_p * probs[order[0]];
    int32_t n = 1;
    while (n < keep && probs[order[n]] >= floor) ++n;
    keep = n;
  }
  double total = 0.0;
  for (int32_t i = 0; i < keep; ++i) total += probs[order[i]];
  double r = rng.uniform_f64() * total;
  int32_t chosen = order[keep - 1];
  for (int32_t i = 0; i < keep; ++i) {
    r -= probs[order[i]];
    if (r < 0.0) {
      chosen = order[i];
      break;
    }
  }
  return {chosen, token_logprob(logits, vocab, chosen), {}};
}

}  // namespace vortex
