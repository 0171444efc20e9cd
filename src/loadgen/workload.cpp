#include "loadgen/workload.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace vortex::loadgen {
namespace {

// Short, frequent words: one token each (with their leading space) in the BPE vocabularies of
// Qwen, Llama and GPT alike.
constexpr const char* kWords[] = {
    "the",   "of",    "and",  "to",   "in",    "is",     "that", "for",   "it",    "as",    "was",
    "with",  "be",    "by",   "on",   "not",   "he",     "this", "are",   "or",    "his",   "from",
    "at",    "which", "but",  "have", "an",    "had",    "they", "you",   "were",  "their", "one",
    "all",   "we",    "can",  "her",  "has",   "there",  "been", "if",    "more",  "when",  "will",
    "would", "who",   "so",   "no",   "time",  "people", "year", "way",   "day",   "man",   "thing",
    "world", "life",  "hand", "part", "place", "case",   "week", "point", "number"};
constexpr size_t kNumWords = sizeof(kWords) / sizeof(kWords[0]);

}  // namespace

int32_t sample_length(Rng& rng, int32_t len, double ratio) {
  VORTEX_ASSERT(len >= 1 && ratio >= 0 && ratio <= 1);
  const auto lo = std::max<int32_t>(1, static_cast<int32_t>(std::floor(len * ratio)));
  const auto span = static_cast<uint64_t>(len - lo) + 1;
  return lo + static_cast<int32_t>(rng.next_u64() % span);
}

std::vector<BenchRequest> random_requests(const RandomWorkload& w) {
  VORTEX_ASSERT(w.vocab_size >= 1);
  VORTEX_ASSERT(w.kind == PromptKind::kIds || w.kind == PromptKind::kMessages);
  // A stream of its own, so the prompts do not depend on how many arrival gaps were drawn.
  Rng rng(w.seed ^ 0x5eedf00dcafe1234ull);
  std::vector<BenchRequest> out;
  out.reserve(static_cast<size_t>(w.num_prompts));
  for (int64_t i = 0; i < w.num_prompts; ++i) {
    BenchRequest r;
    r.where = str_cat("random prompt ", i);
    r.kind = w.kind;
    const int32_t in_len = sample_length(rng, w.input_len, w.range_ratio);
    r.max_tokens = sample_length(rng, w.output_len, w.range_ratio);
    if (w.kind == PromptKind::kIds) {
      r.prompt_ids.resize(static_cast<size_t>(in_len));
      for (int32_t& id : r.prompt_ids) {
        id = static_cast<int32_t>(rng.next_u64() % static_cast<uint64_t>(w.vocab_size));
      }
    } else {
      std::string text;
      for (int32_t k = 0; k < in_len; ++k) {
        if (k > 0) text += ' ';
        text += kWords[rng.next_u64() % kNumWords];
      }
      r.messages = Json::array({{{"role", "user"}, {"content", std::move(text)}}});
    }
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace vortex::loadgen
