#include "eval/task_scoring.h"

#include <algorithm>
#include <cctype>

namespace vortex::eval {

namespace {

bool item_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-';
}

std::string lowercase_trimmed(std::string_view s) {
  std::string out;
  for (char c : s) out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  // A '-' belongs to keys like "quiet-harbor", not to the ends of an item ("- 42" lists).
  size_t b = out.find_first_not_of('-'), e = out.find_last_not_of('-');
  return b == std::string::npos ? "" : out.substr(b, e - b + 1);
}

}  // namespace

std::vector<std::string> completion_items(std::string_view completion) {
  std::vector<std::string> items;
  size_t i = 0;
  while (i < completion.size()) {
    while (i < completion.size() && !item_char(completion[i])) ++i;
    size_t start = i;
    while (i < completion.size() && item_char(completion[i])) ++i;
    if (i > start) {
      std::string item = lowercase_trimmed(completion.substr(start, i - start));
      if (!item.empty()) items.push_back(std::move(item));
    }
  }
  return items;
}

double score_task_completion(std::string_view completion, const std::vector<std::string>& answers) {
  if (answers.empty()) return 0;
  const std::vector<std::string> items = completion_items(completion);
  int found = 0;
  for (const std::string& a : answers) {
    if (std::find(items.begin(), items.end(), lowercase_trimmed(a)) != items.end()) ++found;
  }
  return static_cast<double>(found) / static_cast<double>(answers.size());
}

}  // namespace vortex::eval
