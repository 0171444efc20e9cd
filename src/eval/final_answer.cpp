#include "eval/final_answer.h"

#include <cctype>
#include <vector>

namespace vortex::eval {

namespace {

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// The text between the brace at `open` and its match, or nullopt when unbalanced.
std::optional<std::string> braced(std::string_view text, size_t open) {
  int depth = 0;
  for (size_t i = open; i < text.size(); ++i) {
    if (text[i] == '{') ++depth;
    if (text[i] == '}' && --depth == 0) return std::string(text.substr(open + 1, i - open - 1));
  }
  return std::nullopt;
}

// The argument of the last \boxed / \fbox in `text`.
std::optional<std::string> last_boxed(std::string_view text) {
  size_t best = std::string_view::npos, best_len = 0;
  for (std::string_view cmd : {"\\boxed", "\\fbox"}) {
    size_t at = text.rfind(cmd);
    if (at != std::string_view::npos && (best == std::string_view::npos || at > best)) {
      best = at;
      best_len = cmd.size();
    }
  }
  if (best == std::string_view::npos) return std::nullopt;
  size_t i = best + best_len;
  if (i < text.size() && text[i] == '{') return braced(text, i);
  // "\boxed 42": the next whitespace-delimited word.
  while (i < text.size() && text[i] == ' ') ++i;
  size_t start = i;
  while (i < text.size() && !std::isspace(static_cast<unsigned char>(text[i])) && text[i] != '$')
    ++i;
  if (i == start) return std::nullopt;
  return std::string(text.substr(start, i - start));
}

// The last number: an optional minus, digits with optional ",ddd" groups, an optional fraction.
std::optional<std::string> last_number(std::string_view text) {
  std::optional<std::string> last;
  size_t i = 0;
  while (i < text.size()) {
    if (!is_digit(text[i])) {
      ++i;
      continue;
    }
    size_t start = i;
    if (start > 0 && text[start - 1] == '-') --start;
    while (i < text.size() && is_digit(text[i])) ++i;
    // Thousands groups: a comma followed by exactly three digits.
    while (i + 3 < text.size() && text[i] == ',' && is_digit(text[i + 1]) &&
           is_digit(text[i + 2]) && is_digit(text[i + 3]) &&
           (i + 4 >= text.size() || !is_digit(text[i + 4]))) {
      i += 4;
    }
    if (i + 1 < text.size() && text[i] == '.' && is_digit(text[i + 1])) {
      ++i;
      while (i < text.size() && is_digit(text[i])) ++i;
    }
    last = std::string(text.substr(start, i - start));
  }
  return last;
}

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) {
    s.replace(at, from.size(), to);
  }
}

// Replaces every \cmd{X} by X.
void unwrap_command(std::string& s, std::string_view cmd) {
  const std::string open = std::string(cmd) + "{";
  for (size_t at = s.find(open); at != std::string::npos; at = s.find(open, at)) {
    std::optional<std::string> inner = braced(s, at + cmd.size());
    if (!inner) break;
    s.replace(at, open.size() + inner->size() + 1, *inner);
  }
}

// "042" -> "42", "-1,000.50" -> "-1000.5"; nullopt when `s` is not a plain number.
std::optional<std::string> canonical_number(const std::string& s) {
  size_t i = 0;
  bool negative = false;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) negative = s[i++] == '-';
  std::string int_part, frac_part;
  size_t group = 0;
  bool grouped = false;
  for (; i < s.size() && (is_digit(s[i]) || s[i] == ','); ++i) {
    if (s[i] == ',') {
      if (int_part.empty() || (grouped && group != 3)) return std::nullopt;
      grouped = true;
      group = 0;
      continue;
    }
    int_part += s[i];
    ++group;
  }
  if (grouped && group != 3) return std::nullopt;
  if (i < s.size() && s[i] == '.') {
    for (++i; i < s.size() && is_digit(s[i]); ++i) frac_part += s[i];
    if (frac_part.empty()) return std::nullopt;
  }
  if (i != s.size() || (int_part.empty() && frac_part.empty())) return std::nullopt;
  const size_t first = int_part.find_first_not_of('0');
  int_part = first == std::string::npos ? std::string(1, '0') : int_part.substr(first);
  while (!frac_part.empty() && frac_part.back() == '0') frac_part.pop_back();
  std::string out = negative && (int_part != "0" || !frac_part.empty()) ? "-" : "";
  out += int_part;
  if (!frac_part.empty()) out.append(".").append(frac_part);
  return out;
}

}  // namespace

std::optional<std::string> extract_final_answer(std::string_view text) {
  if (std::optional<std::string> boxed = last_boxed(text)) return boxed;
  return last_number(text);
}

std::string normalize_final_answer(std::string_view answer) {
  std::string s(answer);
  for (std::string_view cmd : {"\\boxed", "\\text", "\\textbf", "\\mathrm", "\\mathbf"}) {
    unwrap_command(s, cmd);
  }
  for (std::string_view drop :
       {"\\left", "\\right", "\\!", "\\,", "\\;", "\\:", "$", "^{\\circ}", "^\\circ", "\\%", "%"}) {
    replace_all(s, drop, "");
  }
  replace_all(s, "\\dfrac", "\\frac");
  replace_all(s, "\\tfrac", "\\frac");
  std::string compact;
  for (char c : s) {
    if (std::isspace(static_cast<unsigned char>(c))) continue;
    compact += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  while (!compact.empty() && compact.back() == '.') compact.pop_back();
  if (std::optional<std::string> number = canonical_number(compact)) return *number;
  return compact;
}

bool final_answers_match(std::string_view predicted, std::string_view reference) {
  return normalize_final_answer(predicted) == normalize_final_answer(reference);
}

}  // namespace vortex::eval
