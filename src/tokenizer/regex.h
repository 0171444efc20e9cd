// A compiled PCRE2 pattern (UTF + Unicode properties, JIT when available) that lists its
// non-overlapping matches. Safe to use from several threads at once. HF runs these patterns on
// Oniguruma; \s and \S are rewritten to mean Unicode White_Space as there (PCRE2's \s also takes
// U+180E). Other class differences (\w) are not adjusted: HF's byte-level patterns do not use them.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vortex::tok {

class Regex {
 public:
  // Throws vortex::Error "<where>: invalid regex at offset N: <reason>" for a bad pattern.
  Regex(const std::string& pattern, bool literal, const std::string& where);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // [begin, end) byte ranges of the successive leftmost matches in `text` (valid UTF-8).
  // Throws vortex::Error when the pattern backtracks past the step limits of tokenizer.h.
  std::vector<std::pair<size_t, size_t>> find_all(std::string_view text) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// While one is alive, the find_all calls of this thread share one step budget: the base of
// kRegexStepsBase once, plus kRegexStepsPerByte for each byte searched. One encode runs many
// searches (one per piece and pattern); each taking the base would let a hostile pattern spend
// it a thousand times over. Scopes nest; without one, each call has a budget of its own.
class RegexBudgetScope {
 public:
  RegexBudgetScope();
  ~RegexBudgetScope();
  RegexBudgetScope(const RegexBudgetScope&) = delete;
  RegexBudgetScope& operator=(const RegexBudgetScope&) = delete;

 private:
  uint64_t budget_;
  uint64_t* previous_;
};

}  // namespace vortex::tok
