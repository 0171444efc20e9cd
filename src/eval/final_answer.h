// Final answers of free-form solutions (AIME/AMC style datasets): extraction from the text and
// the normalisation under which a predicted and a reference answer count as equal.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace vortex::eval {

// The content of the last \boxed{...} (or \fbox{...}) with nested braces kept, or of
// "\boxed 42"; else the last number in the text ("1,234", "-3.5"); nullopt when neither.
// An unclosed last \boxed{ falls back to the last number.
std::optional<std::string> extract_final_answer(std::string_view text);

// The comparable form of an answer: spaces, '$', \left/\right, spacing commands, degree
// marks and a trailing period dropped; \text{..}, \mathrm{..}, \boxed{..} unwrapped;
// \dfrac and \tfrac read as \frac; letters lowercased; numbers canonical ("042" -> "42",
// "1,000" -> "1000", "2.50" -> "2.5", "+3" -> "3", "-0" -> "0").
std::string normalize_final_answer(std::string_view answer);

// Whether the two answers are equal after normalisation.
bool final_answers_match(std::string_view predicted, std::string_view reference);

}  // namespace vortex::eval
