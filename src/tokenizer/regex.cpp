#include "tokenizer/regex.h"

#include <algorithm>
#include <cstdint>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "core/error.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace vortex::tok {
namespace {

std::string pcre2_message(int code) {
  PCRE2_UCHAR buffer[256];
  pcre2_get_error_message(code, buffer, sizeof(buffer));
  return reinterpret_cast<const char*>(buffer);
}

// JIT matching needs a stack of its own; long runs of whitespace can overflow the 32 KiB
// default, so each thread keeps a larger one (JIT stacks must not be shared between threads).
// A pattern from tokenizer.json may backtrack catastrophically ("(a+)+$"): the limits make such a
// search fail with an error instead of running for hours (match limit, honoured by the JIT too)
// or taking gigabytes (the interpreter's heap, whose default limit is 20 GB).
struct ThreadJit {
  pcre2_jit_stack* stack = nullptr;
  pcre2_match_context* context = nullptr;
  ThreadJit() {
    stack = pcre2_jit_stack_create(64 * 1024, 64 * 1024 * 1024, nullptr);
    context = pcre2_match_context_create(nullptr);
    if (context) {
      pcre2_set_match_limit(context, kRegexMatchLimit);
      pcre2_set_heap_limit(context, 256 * 1024);  // KiB
    }
    if (stack && context) pcre2_jit_stack_assign(context, nullptr, stack);
  }
  ~ThreadJit() {
    if (context) pcre2_match_context_free(context);
    if (stack) pcre2_jit_stack_free(stack);
  }
};

thread_local uint64_t* t_budget = nullptr;  // the innermost RegexBudgetScope's, if any

pcre2_match_context* thread_match_context() {
  thread_local ThreadJit jit;
  return jit.context;
}

// HF compiles these patterns with Oniguruma, whose \s is exactly Unicode White_Space; PCRE2's
// \s also matches U+180E. Spelling the class out makes both engines split text the same way.
constexpr std::string_view kWhiteSpaceMembers = R"(\p{Z}\t\n\x0B\f\r\x{85})";

std::string onig_compatible(const std::string& pattern) {
  std::string out;
  out.reserve(pattern.size() + 64);
  bool in_class = false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      const char next = pattern[++i];
      if (next == 's') {
        if (in_class) {
          out.append(kWhiteSpaceMembers);
        } else {
          out.append("[").append(kWhiteSpaceMembers).append("]");
        }
      } else if (next == 'S' && !in_class) {
        out.append("[^").append(kWhiteSpaceMembers).append("]");
      } else {
        out.push_back(c);
        out.push_back(next);
      }
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      out.push_back(c);
      // A ']' first in the class (after an optional '^') is a literal, not the end.
      if (i + 1 < pattern.size() && pattern[i + 1] == '^') out.push_back(pattern[++i]);
      if (i + 1 < pattern.size() && pattern[i + 1] == ']') out.push_back(pattern[++i]);
      continue;
    }
    if (in_class && c == '[' && i + 1 < pattern.size() && pattern[i + 1] == ':') {
      const size_t close = pattern.find(":]", i + 2);  // a POSIX class such as [:alpha:]
      if (close != std::string::npos) {
        out.append(pattern, i, close + 2 - i);
        i = close + 1;
        continue;
      }
    }
    if (in_class && c == ']') in_class = false;
    out.push_back(c);
  }
  return out;
}

}  // namespace

struct Regex::Impl {
  pcre2_code* code = nullptr;
  std::string where;
  ~Impl() {
    if (code) pcre2_code_free(code);
  }
};

Regex::Regex(const std::string& pattern, bool literal, const std::string& where)
    : impl_(std::make_unique<Impl>()) {
  impl_->where = where;
  if (pattern.size() > kMaxRegexPatternBytes) {
    fail(where, ": pattern of ", pattern.size(), " bytes, over the limit of ",
         kMaxRegexPatternBytes);
  }
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  // PCRE2 refuses UCP together with LITERAL; a literal needs no character classes anyway.
  const uint32_t options = literal ? (PCRE2_UTF | PCRE2_LITERAL) : (PCRE2_UTF | PCRE2_UCP);
  const std::string source = literal ? pattern : onig_compatible(pattern);
  impl_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(source.data()), source.size(), options,
                              &error_code, &error_offset, nullptr);
  if (!impl_->code) {
    // An offset into the rewritten pattern would mislead, so it is given only for the original.
    const std::string at = source == pattern ? str_cat(" at offset ", error_offset) : "";
    fail(where, ": invalid regex", at, ": ", pcre2_message(error_code),
         " (pattern: ", printable(pattern, 200), ")");
  }
  // JIT is an optimisation only: when unavailable, the interpreter gives the same matches.
  pcre2_jit_compile(impl_->code, PCRE2_JIT_COMPLETE);
}

Regex::~Regex() = default;

RegexBudgetScope::RegexBudgetScope() : budget_(kRegexStepsBase), previous_(t_budget) {
  t_budget = &budget_;
}

RegexBudgetScope::~RegexBudgetScope() {
  t_budget = previous_;
}

std::vector<std::pair<size_t, size_t>> Regex::find_all(std::string_view text) const {
  std::vector<std::pair<size_t, size_t>> matches;
  pcre2_match_data* data = pcre2_match_data_create_from_pattern(impl_->code, nullptr);
  if (!data) fail("tokenizer: out of memory for regex match data");
  pcre2_match_context* context = thread_match_context();
  // Without a context PCRE2 would match without the limits above.
  if (!context) fail("tokenizer: out of memory for a regex match context");
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t start = 0;
  // A pattern can also backtrack a lot on every match while staying under the limit of one
  // search, so the searches share a budget too. PCRE2 does not report the steps a search took,
  // so each search starts with a small limit that doubles while it is too small, and every limit
  // tried is charged in full: at most four times what the searches needed. The tokenizers' own
  // patterns need a few steps per byte they pass over.
  uint64_t own_budget = kRegexStepsBase;
  uint64_t& budget = t_budget ? *t_budget : own_budget;
  budget += kRegexStepsPerByte * static_cast<uint64_t>(text.size());
  while (start <= text.size()) {
    int rc = PCRE2_ERROR_MATCHLIMIT;
    for (uint64_t limit = 16;; limit *= 2) {
      const uint64_t cap = std::min<uint64_t>(budget, kRegexMatchLimit);
      if (cap == 0) break;
      limit = std::min(limit, cap);
      pcre2_set_match_limit(context, static_cast<uint32_t>(limit));
      // The text was validated once up front, so PCRE2 need not re-check it on every call.
      rc = pcre2_match(impl_->code, subject, text.size(), start, PCRE2_NO_UTF_CHECK, data,
                       context);
      budget -= limit;
      if (rc != PCRE2_ERROR_MATCHLIMIT || limit == cap) break;
    }
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      pcre2_match_data_free(data);
      fail(impl_->where, ": regex matching failed: ", pcre2_message(rc),
           rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_HEAPLIMIT ||
                   rc == PCRE2_ERROR_JIT_STACKLIMIT
               ? " (the pattern backtracks too much on this text)"
               : "");
    }
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(data);
    const size_t begin = ovector[0], end = ovector[1];
    matches.emplace_back(begin, end);
    if (end > begin) {
      start = end;
    } else if (end < text.size()) {
      start = end + utf8_char_len(static_cast<unsigned char>(text[end]));
    } else {
      break;
    }
  }
  pcre2_match_data_free(data);
  return matches;
}

}  // namespace vortex::tok
