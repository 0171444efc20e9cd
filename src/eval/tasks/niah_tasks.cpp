// Needle-in-a-haystack: "special magic numbers" keyed by adjective-noun pairs, hidden among
// filler sentences.
#include <algorithm>
#include <set>

#include "eval/tasks/haystack.h"
#include "eval/tasks/task_generators.h"
#include "eval/tasks/task_random.h"
#include "eval/tasks/word_lists.h"

namespace vortex::eval {

namespace {

constexpr int kValueDigits = 7;
constexpr int kMultikeyNeedles = 4;  // the asked key and three distractors
constexpr int kMultivalueNeedles = 4;

// `count` distinct keys such as "quiet-harbor".
std::vector<std::string> distinct_keys(Rng& rng, int count) {
  std::set<std::string> seen;
  std::vector<std::string> keys;
  while (static_cast<int>(keys.size()) < count) {
    std::string k =
        std::string(random_pick(rng, adjectives())) + "-" + std::string(random_pick(rng, nouns()));
    if (seen.insert(k).second) keys.push_back(k);
  }
  return keys;
}

std::vector<std::string> distinct_numbers(Rng& rng, int count, int digits) {
  std::set<std::string> seen;
  std::vector<std::string> out;
  while (static_cast<int>(out.size()) < count) {
    std::string v = random_number(rng, digits);
    if (seen.insert(v).second) out.push_back(v);
  }
  return out;
}

std::string needle_text(const std::string& key, const std::string& value) {
  return "One of the special magic numbers for " + key + " is: " + value + ".";
}

const char* kSingleHead =
    "A special magic number is hidden within the following text. Make sure to memorize it. "
    "I will quiz you about the number afterwards.\n\n";
const char* kManyHead =
    "Some special magic numbers are hidden within the following text. Make sure to memorize "
    "them. I will quiz you about the numbers afterwards.\n\n";

std::string one_value_question(const std::string& key) {
  return "\n\nWhat is the special magic number for " + key +
         " mentioned in the provided text?\nAnswer:";
}

}  // namespace

TaskBody make_niah_single(int32_t context, Rng& rng, const PromptEncoder& encoder,
                          const TaskVariant& /*variant*/) {
  const std::string key = distinct_keys(rng, 1)[0];
  const std::string value = random_number(rng, kValueDigits);
  std::vector<Needle> needles = {{needle_text(key, value), random_unit(rng)}};
  return {build_haystack_body("niah_single", kSingleHead, needles, one_value_question(key), context,
                              encoder, rng),
          {value}};
}

TaskBody make_niah_multikey(int32_t context, Rng& rng, const PromptEncoder& encoder,
                            const TaskVariant& /*variant*/) {
  const std::vector<std::string> keys = distinct_keys(rng, kMultikeyNeedles);
  const std::vector<std::string> values = distinct_numbers(rng, kMultikeyNeedles, kValueDigits);
  std::vector<Needle> needles;
  for (int i = 0; i < kMultikeyNeedles; ++i) {
    needles.push_back({needle_text(keys[i], values[i]), random_unit(rng)});
  }
  const size_t asked = random_below(rng, kMultikeyNeedles);
  return {build_haystack_body("niah_multikey", kManyHead, needles, one_value_question(keys[asked]),
                              context, encoder, rng),
          {values[asked]}};
}

TaskBody make_niah_multivalue(int32_t context, Rng& rng, const PromptEncoder& encoder,
                              const TaskVariant& /*variant*/) {
  const std::string key = distinct_keys(rng, 1)[0];
  const std::vector<std::string> values = distinct_numbers(rng, kMultivalueNeedles, kValueDigits);
  // Depths in increasing order, so the values appear in the text in the order they are listed.
  std::vector<double> depths;
  for (int i = 0; i < kMultivalueNeedles; ++i) depths.push_back(random_unit(rng));
  std::sort(depths.begin(), depths.end());
  std::vector<Needle> needles;
  for (int i = 0; i < kMultivalueNeedles; ++i) {
    needles.push_back({needle_text(key, values[i]), depths[i]});
  }
  const std::string question = "\n\nWhat are all the special magic numbers for " + key +
                               " mentioned in the provided text?\nAnswer:";
  return {
      build_haystack_body("niah_multivalue", kManyHead, needles, question, context, encoder, rng),
      values};
}

}  // namespace vortex::eval
