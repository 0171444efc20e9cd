#include "tokenizer/pre_tokenizer.h"

#include <algorithm>

#include "core/error.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/regex.h"
#include "tokenizer/sequence_limits.h"

namespace vortex::tok {
namespace {

constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

enum class Behavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

struct Span {
  size_t begin, end;
  bool is_match;
};

// Splits `text` around the regex matches following one of HF's SplitDelimiterBehavior rules.
void split_with_behavior(const Regex& regex, bool invert, Behavior behavior,
                         const std::string& text, std::vector<std::string>& out) {
  std::vector<Span> spans;
  size_t prev = 0;
  for (const auto& [b, e] : regex.find_all(text)) {
    if (b != prev) spans.push_back({prev, b, invert});
    spans.push_back({b, e, !invert});
    prev = e;
  }
  if (prev != text.size()) spans.push_back({prev, text.size(), invert});

  std::vector<std::pair<size_t, size_t>> pieces;
  switch (behavior) {
    case Behavior::kIsolated:
      for (const auto& s : spans) pieces.emplace_back(s.begin, s.end);
      break;
    case Behavior::kRemoved:
      for (const auto& s : spans) {
        if (!s.is_match) pieces.emplace_back(s.begin, s.end);
      }
      break;
    case Behavior::kMergedWithPrevious: {
      bool previous_match = false;
      for (const auto& s : spans) {
        if (s.is_match && !previous_match && !pieces.empty()) {
          pieces.back().second = s.end;
        } else {
          pieces.emplace_back(s.begin, s.end);
        }
        previous_match = s.is_match;
      }
      break;
    }
    case Behavior::kMergedWithNext: {
      bool previous_match = false;
      for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
        if (it->is_match && !previous_match && !pieces.empty()) {
          pieces.back().first = it->begin;
        } else {
          pieces.emplace_back(it->begin, it->end);
        }
        previous_match = it->is_match;
      }
      std::reverse(pieces.begin(), pieces.end());
      break;
    }
    case Behavior::kContiguous: {
      bool previous_match = false;
      for (const auto& s : spans) {
        if (s.is_match && previous_match && !pieces.empty()) {
          pieces.back().second = s.end;
        } else {
          pieces.emplace_back(s.begin, s.end);
        }
        previous_match = s.is_match;
      }
      break;
    }
  }
  for (const auto& [b, e] : pieces) {
    if (e > b) out.emplace_back(text.substr(b, e - b));
  }
}

class SplitPreTokenizer : public PreTokenizer {
 public:
  SplitPreTokenizer(const std::string& pattern, bool literal, Behavior behavior, bool invert,
                    const std::string& where)
      : regex_(pattern, literal, where), behavior_(behavior), invert_(invert) {}

  void apply(std::vector<std::string>& pieces) const override {
    std::vector<std::string> out;
    out.reserve(pieces.size());
    for (const auto& piece : pieces) split_with_behavior(regex_, invert_, behavior_, piece, out);
    pieces = std::move(out);
  }

 private:
  Regex regex_;
  Behavior behavior_;
  bool invert_;
};

class ByteLevelPreTokenizer : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex, const std::string& where)
      : add_prefix_space_(add_prefix_space) {
    if (use_regex) regex_ = std::make_unique<Regex>(kGpt2Pattern, false, where);
  }

  void apply(std::vector<std::string>& pieces) const override {
    std::vector<std::string> out;
    out.reserve(pieces.size());
    std::vector<std::string> split;
    for (auto& piece : pieces) {
      if (add_prefix_space_ && (piece.empty() || piece[0] != ' ')) piece = std::string(" ") + piece;
      if (regex_) {
        split.clear();
        split_with_behavior(*regex_, false, Behavior::kIsolated, piece, split);
        for (const auto& s : split) out.push_back(bytes_to_byte_level(s));
      } else if (!piece.empty()) {
        out.push_back(bytes_to_byte_level(piece));
      }
    }
    pieces = std::move(out);
  }

 private:
  bool add_prefix_space_;
  std::unique_ptr<Regex> regex_;
};

class SequencePreTokenizer : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> steps)
      : steps_(std::move(steps)) {}

  void apply(std::vector<std::string>& pieces) const override {
    for (const auto& step : steps_) step->apply(pieces);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> steps_;
};

Behavior parse_behavior(const Json& spec, const std::string& file, const std::string& field) {
  const std::string name = spec.value("behavior", std::string("Isolated"));
  if (name == "Removed") return Behavior::kRemoved;
  if (name == "Isolated") return Behavior::kIsolated;
  if (name == "MergedWithPrevious") return Behavior::kMergedWithPrevious;
  if (name == "MergedWithNext") return Behavior::kMergedWithNext;
  if (name == "Contiguous") return Behavior::kContiguous;
  fail(file, ": field '", field, ".behavior': unknown split behavior '", printable(name),
       "' (supported: Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous)");
}

bool bool_field(const Json& spec, const char* key, bool fallback, const std::string& file,
                const std::string& field) {
  if (!spec.contains(key) || spec[key].is_null()) return fallback;
  if (!spec[key].is_boolean()) fail(file, ": field '", field, ".", key, "' must be a boolean");
  return spec[key].get<bool>();
}

// `depth` counts the Sequences around `spec`; `parts` the parts built so far.
std::unique_ptr<PreTokenizer> build(const Json& spec, const std::string& file,
                                    const std::string& field, int depth, int& parts) {
  if (spec.is_null()) return nullptr;
  count_sequence_part(file, field, parts);
  if (!spec.is_object() || !spec.contains("type") || !spec["type"].is_string()) {
    fail(file, ": field '", field, "' must be an object with a string 'type'");
  }
  const std::string type = spec["type"];
  if (type == "Split") {
    const auto& pattern = spec.value("pattern", Json());
    const bool is_regex = pattern.is_object() && pattern.contains("Regex");
    const bool is_string = pattern.is_object() && pattern.contains("String");
    if (!(is_regex || is_string) || !pattern[is_regex ? "Regex" : "String"].is_string()) {
      fail(file, ": field '", field,
           ".pattern' must be {\"Regex\": \"...\"} or {\"String\": \"...\"}");
    }
    return std::make_unique<SplitPreTokenizer>(
        pattern[is_regex ? "Regex" : "String"].get<std::string>(), !is_regex,
        parse_behavior(spec, file, field), bool_field(spec, "invert", false, file, field),
        str_cat(file, ": field '", field, ".pattern'"));
  }
  if (type == "ByteLevel") {
    return std::make_unique<ByteLevelPreTokenizer>(
        bool_field(spec, "add_prefix_space", true, file, field),
        bool_field(spec, "use_regex", true, file, field), str_cat(file, ": ByteLevel"));
  }
  if (type == "Sequence") {
    check_sequence_depth(file, field, depth);
    const auto it = spec.find("pretokenizers");
    if (it == spec.end() || !it->is_array()) {
      fail(file, ": field '", field, ".pretokenizers' must be an array");
    }
    const Json& list = *it;
    std::vector<std::unique_ptr<PreTokenizer>> steps;
    for (size_t i = 0; i < list.size(); ++i) {
      auto step = build(list[i], file, str_cat(field, ".pretokenizers[", i, "]"), depth + 1, parts);
      if (step) steps.push_back(std::move(step));
    }
    return std::make_unique<SequencePreTokenizer>(std::move(steps));
  }
  fail(file, ": field '", field, ".type': unsupported pre-tokenizer '", printable(type),
       "' (supported: Split, ByteLevel, Sequence)");
}

}  // namespace

std::unique_ptr<PreTokenizer> make_pre_tokenizer(const Json& spec, const std::string& file,
                                                 const std::string& field) {
  int parts = 0;
  return build(spec, file, field, 0, parts);
}

}  // namespace vortex::tok
