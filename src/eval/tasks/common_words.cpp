// Common-word extraction: a shuffled list of words in which ten words each appear ten times as
// often as the rest (30 against 3 at about 4K tokens, as in RULER); the answer is those ten.
#include <algorithm>
#include <map>

#include "core/error.h"
#include "eval/tasks/haystack.h"
#include "eval/tasks/task_generators.h"
#include "eval/tasks/task_random.h"
#include "eval/tasks/word_lists.h"

namespace vortex::eval {

namespace {

constexpr int kCommonWords = 10;
constexpr int kMinUncommonFrequency = 3;
constexpr int kFrequencyRatio = 10;   // common : uncommon frequency, when there is room
constexpr int kMinFrequencyGap = 3;   // common words stay this far above any uncommon word
constexpr double kCommonShare = 0.3;  // of the list's entries, when the ratio allows

const char* kHead =
    "Below is a list of words. Some of the words appear more often than the others. Memorize "
    "the ones that appear most often.\n\n";

}  // namespace

TaskBody make_common_words(int32_t context, Rng& rng, const PromptEncoder& encoder,
                           const TaskVariant& /*variant*/) {
  std::vector<std::string> pool;
  for (auto list : {nouns(), adjectives()}) {
    for (std::string_view w : list) pool.emplace_back(w);
  }
  random_shuffle(rng, pool);
  const std::vector<std::string> common(pool.begin(), pool.begin() + kCommonWords);
  const std::vector<std::string> uncommon(pool.begin() + kCommonWords, pool.end());

  const std::string tail = "\n\nWhat are the " + std::to_string(kCommonWords) +
                           " most common words in the list above?\nAnswer:";
  const int64_t budget =
      int64_t{context} - encoder.overhead() - encoder.count(kHead) - encoder.count(tail);
  double mean_cost = 0;
  for (const std::string& w : pool) mean_cost += encoder.count(" " + w);
  mean_cost /= static_cast<double>(pool.size());
  const auto entries =
      static_cast<int64_t>(static_cast<double>(std::max<int64_t>(budget, 0)) / mean_cost);

  // Frequencies: uncommon words appear f_u times (more once the distinct words run out), common
  // ones f_c times, about kCommonShare of the list, at most kFrequencyRatio * f_u.
  int64_t f_u = kMinUncommonFrequency, f_c = 0, n_uncommon = 0;
  while (true) {
    f_c = std::max<int64_t>(
        f_u + kMinFrequencyGap,
        std::min<int64_t>(
            kFrequencyRatio * f_u,
            static_cast<int64_t>(kCommonShare * static_cast<double>(entries)) / kCommonWords));
    n_uncommon = (entries - kCommonWords * f_c) / f_u;
    if (n_uncommon <= static_cast<int64_t>(uncommon.size())) break;
    ++f_u;
  }
  if (n_uncommon < 1) {
    const auto needed =
        static_cast<int64_t>((kCommonWords * (kMinUncommonFrequency + kMinFrequencyGap) +
                              2 * kMinUncommonFrequency) *
                             mean_cost) +
        (context - budget);
    fail("cwe: a context of ", context, " tokens is too short for this task (needs about ", needed,
         ")");
  }

  std::vector<std::string> list;
  std::map<std::string, int64_t> frequency;
  for (const std::string& w : common) list.insert(list.end(), static_cast<size_t>(f_c), w);
  for (int64_t i = 0; i < n_uncommon; ++i) {
    list.insert(list.end(), static_cast<size_t>(f_u), uncommon[static_cast<size_t>(i)]);
  }
  random_shuffle(rng, list);
  std::vector<char> removable;
  for (const std::string& w : list) {
    removable.push_back(std::find(common.begin(), common.end(), w) == common.end());
    ++frequency[w];
  }
  // Pads: uncommon words that fit the room and can take one more occurrence, staying at least
  // kMinFrequencyGap - 1 below the common words.
  auto pad = [&](int32_t room) -> std::string {
    std::vector<const std::string*> fitting;
    for (const auto& [word, cost] : encoder.word_costs()) {
      if (cost > room || frequency[word] > f_u) continue;
      if (std::find(uncommon.begin(), uncommon.end(), word) == uncommon.end()) continue;
      fitting.push_back(&word);
    }
    if (fitting.empty()) return "";
    const std::string& w = *fitting[random_below(rng, fitting.size())];
    ++frequency[w];
    return w;
  };
  fit_units_to_context("cwe", kHead, list, removable, tail, context, encoder, pad);

  // The answer lists the common words in the order they first appear.
  std::vector<std::string> answers;
  for (const std::string& w : list) {
    if (std::find(common.begin(), common.end(), w) != common.end() &&
        std::find(answers.begin(), answers.end(), w) == answers.end()) {
      answers.push_back(w);
    }
  }
  return {join_units(kHead, list, tail), answers};
}

}  // namespace vortex::eval
