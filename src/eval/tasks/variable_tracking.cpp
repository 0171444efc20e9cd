// Variable tracking: chains of assignments (VAR QXZKE = 41723. VAR HJDUA = VAR QXZKE. ...) hidden
// in filler text; the answer is every variable that ends up holding the queried value.
#include <algorithm>
#include <set>

#include "eval/tasks/haystack.h"
#include "eval/tasks/task_generators.h"
#include "eval/tasks/task_random.h"

namespace vortex::eval {

namespace {

constexpr int kNameLetters = 5;

const char* kHead =
    "Memorize and track the chains of variable assignments hidden in the following text.\n\n";

}  // namespace

TaskBody make_variable_tracking(int32_t context, Rng& rng, const PromptEncoder& encoder,
                                const TaskVariant& variant) {
  // By default the queried chain and one distractor, 4 hops (five variables per chain), 5-digit
  // values. (Values are distinct, so at most 9 chains could use 1-digit ones: vt_chains <= 8.)
  const int num_chains = variant.vt_chains;
  const int num_hops = variant.vt_hops;
  const int value_digits = variant.vt_value_digits;
  std::set<std::string> used_names, used_values;
  std::vector<std::vector<std::string>> chains(static_cast<size_t>(num_chains));
  std::vector<std::string> values;
  for (auto& chain : chains) {
    while (static_cast<int>(chain.size()) < num_hops + 1) {
      std::string name = random_upper_word(rng, kNameLetters);
      if (used_names.insert(name).second) chain.push_back(name);
    }
    std::string value;
    do value = random_number(rng, value_digits);
    while (!used_values.insert(value).second);
    values.push_back(value);
  }
  std::vector<Needle> needles;
  for (int c = 0; c < num_chains; ++c) {
    // A chain's assignments appear in order, so each names a variable already set.
    std::vector<double> depths;
    for (int i = 0; i <= num_hops; ++i) depths.push_back(random_unit(rng));
    std::sort(depths.begin(), depths.end());
    const auto& chain = chains[static_cast<size_t>(c)];
    needles.push_back(
        {"VAR " + chain[0] + " = " + values[static_cast<size_t>(c)] + ".", depths[0]});
    for (int i = 1; i <= num_hops; ++i) {
      needles.push_back({"VAR " + chain[static_cast<size_t>(i)] + " = VAR " +
                             chain[static_cast<size_t>(i - 1)] + ".",
                         depths[static_cast<size_t>(i)]});
    }
  }
  const size_t asked = random_below(rng, num_chains);
  const std::string question = "\n\nFind all variables that are assigned the value " +
                               values[asked] + " in the text above.\nAnswer:";
  return {build_haystack_body("vt", kHead, needles, question, context, encoder, rng),
          chains[asked]};
}

}  // namespace vortex::eval
