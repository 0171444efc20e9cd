// The fixed vocabulary of the synthetic tasks: haystack sentences, needle keys and the words of
// common-word extraction all come from these lists, so a sample depends only on its seed.
// Changing a list changes every generated sample (the golden test in tests/eval shows it).
#pragma once

#include <span>
#include <string_view>

namespace vortex::eval {

std::span<const std::string_view> nouns();       // distinct, lowercase, ASCII
std::span<const std::string_view> adjectives();  // distinct, lowercase, none is also a noun
std::span<const std::string_view> verbs_past();  // "admired", "borrowed", ...
std::span<const std::string_view> places();      // "village", "market", ...

}  // namespace vortex::eval
