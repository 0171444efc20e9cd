#include "eval/tasks/haystack.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "eval/tasks/task_random.h"
#include "eval/tasks/word_lists.h"

namespace vortex::eval {

namespace {

std::string with_article(std::string_view word) {
  const bool vowel = std::string_view("aeiou").find(word.front()) != std::string_view::npos;
  return std::string(vowel ? "an " : "a ") + std::string(word);
}

std::vector<std::string> split_words(const std::string& text) {
  std::vector<std::string> words;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t space = text.find(' ', pos);
    if (space == std::string::npos) space = text.size();
    if (space > pos) words.push_back(text.substr(pos, space - pos));
    pos = space + 1;
  }
  return words;
}

constexpr int kFitRounds = 16;

}  // namespace

std::string filler_sentence(Rng& rng) {
  auto noun = [&] { return std::string(random_pick(rng, nouns())); };
  auto adj = [&] { return std::string(random_pick(rng, adjectives())); };
  auto verb = [&] { return std::string(random_pick(rng, verbs_past())); };
  auto place = [&] { return std::string(random_pick(rng, places())); };
  switch (random_below(rng, 8)) {
    case 0: {
      std::string a = adj(), n = noun();
      return "The " + a + " " + n + " " + verb() + " " + with_article(noun()) + " near the " +
             place() + ".";
    }
    case 1: {
      std::string v = verb(), a = adj();
      return "Yesterday someone " + v + " the " + a + " " + noun() + " by the " + place() + ".";
    }
    case 2: {
      std::string n = noun(), p = place();
      return "Every " + n + " in the " + p + " looked " + adj() + " that morning.";
    }
    case 3: {
      std::string n = noun();
      return "Nobody knew why the " + n + " seemed so " + adj() + ".";
    }
    case 4: {
      std::string a1 = adj(), n1 = noun(), a2 = adj(), n2 = noun(), v = verb();
      return "A " + a1 + " " + n1 + " and " + with_article(a2) + " " + n2 + " " + v + " the " +
             noun() + " together.";
    }
    case 5: {
      std::string p = place(), n = noun(), v = verb(), a = adj();
      return "Near the " + p + ", an old " + n + " " + v + " " + with_article(a) + " " + noun() +
             ".";
    }
    case 6: {
      std::string a = adj(), n = noun(), v = verb();
      return "It was " + with_article(a) + " day, and the " + n + " " + v + " every " + noun() +
             " in sight.";
    }
    default: {
      std::string v = verb(), n1 = noun(), n2 = noun();
      return "The children " + v + " the " + n1 + " while the " + n2 + " stayed " + adj() + ".";
    }
  }
}

std::string join_units(const std::string& head, const std::vector<std::string>& units,
                       const std::string& tail) {
  std::string body = head;
  for (size_t i = 0; i < units.size(); ++i) {
    if (i > 0) body += ' ';
    body += units[i];
  }
  return body + tail;
}

int32_t fit_units_to_context(const std::string& task, const std::string& head,
                             std::vector<std::string>& units, std::vector<char>& removable,
                             const std::string& tail, int32_t context, const PromptEncoder& encoder,
                             const std::function<std::string(int32_t)>& pad) {
  auto measure = [&] {
    return static_cast<int32_t>(encoder.encode(join_units(head, units, tail)).size());
  };
  auto drop_last_removable = [&]() -> int32_t {
    for (size_t i = units.size(); i-- > 0;) {
      if (!removable[i]) continue;
      int32_t cost = std::max(1, encoder.count(" " + units[i]));
      units.erase(units.begin() + static_cast<std::ptrdiff_t>(i));
      removable.erase(removable.begin() + static_cast<std::ptrdiff_t>(i));
      return cost;
    }
    fail(task, ": a context of ", context,
         " tokens is too short for this task's instructions, needles and question");
  };
  int32_t n = measure();
  // Units are costed alone, so a join can differ from the estimate by a token here and there;
  // a few rounds settle it (bounded, as a pad and a trim could undo each other forever).
  for (int round = 0; round < kFitRounds && n != context; ++round) {
    if (n > context) {
      for (int32_t dropped = 0; dropped < n - context;) dropped += drop_last_removable();
    } else {
      bool padded = false;
      for (int32_t room = context - n; room > 0;) {
        std::string unit = pad(room);
        if (unit.empty()) break;
        room -= std::max(1, encoder.count(" " + unit));
        // Just before the last removable unit, so the text where the body meets the tail
        // ("workshop.\n\nWhat", which may merge across) stays as it was and the pad costs
        // what it costs alone.
        size_t at = units.size();
        while (at > 0 && !removable[at - 1]) --at;
        at = at > 0 ? at - 1 : units.size();
        units.insert(units.begin() + static_cast<std::ptrdiff_t>(at), std::move(unit));
        removable.insert(removable.begin() + static_cast<std::ptrdiff_t>(at), 1);
        padded = true;
      }
      if (!padded) break;
    }
    n = measure();
  }
  while (n > context) {
    drop_last_removable();
    n = measure();
  }
  return n;
}

std::string build_haystack_body(const std::string& task, const std::string& head,
                                const std::vector<Needle>& needles, const std::string& tail,
                                int32_t context, const PromptEncoder& encoder, Rng& rng) {
  int64_t budget =
      int64_t{context} - encoder.overhead() - encoder.count(head) - encoder.count(tail);
  for (const Needle& n : needles) budget -= encoder.count(" " + n.text);
  if (budget < 0) {
    fail(task, ": a context of ", context,
         " tokens is too short for this task (the instructions, "
         "needles and question alone take ",
         int64_t{context} - budget, ")");
  }

  // Whole sentences while they fit, then the words of one more that fit.
  std::vector<std::vector<std::string>> sentences;
  int64_t used = 0;
  while (true) {
    std::string s = filler_sentence(rng);
    const int32_t cost = encoder.count(" " + s);
    if (used + cost <= budget) {
      sentences.push_back(split_words(s));
      used += cost;
      continue;
    }
    std::vector<std::string> fragment;
    for (std::string& w : split_words(s)) {
      const int32_t c = encoder.count(" " + w);
      if (used + c > budget) break;
      fragment.push_back(std::move(w));
      used += c;
    }
    if (!fragment.empty()) sentences.push_back(std::move(fragment));
    break;
  }

  // Needles go between sentences, at the boundary nearest their depth.
  std::vector<size_t> order(needles.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return needles[a].depth < needles[b].depth; });
  std::vector<std::string> units;
  std::vector<char> removable;
  size_t next = 0;
  auto place_needles_at = [&](size_t boundary) {
    while (next < order.size()) {
      const double d = std::clamp(needles[order[next]].depth, 0.0, 1.0);
      const auto at = static_cast<size_t>(std::llround(d * static_cast<double>(sentences.size())));
      if (at != boundary) break;
      units.push_back(needles[order[next]].text);
      removable.push_back(0);
      ++next;
    }
  };
  for (size_t s = 0; s < sentences.size(); ++s) {
    place_needles_at(s);
    for (std::string& w : sentences[s]) {
      units.push_back(std::move(w));
      removable.push_back(1);
    }
  }
  place_needles_at(sentences.size());

  auto pad = [&](int32_t room) -> std::string {
    std::vector<const std::string*> fitting;
    for (const auto& [word, cost] : encoder.word_costs()) {
      if (cost <= room) fitting.push_back(&word);
    }
    if (fitting.empty()) return "";
    return *fitting[random_below(rng, fitting.size())];
  };
  fit_units_to_context(task, head, units, removable, tail, context, encoder, pad);
  return join_units(head, units, tail);
}

}  // namespace vortex::eval
