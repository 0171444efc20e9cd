// Long prompts of an exact token length: a head (instructions), a body of space-separated units
// (filler sentences with needles between them, or a list of words) and a tail (the question and
// the answer cue). Lengths are the model input's, measured with the PromptEncoder.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/rng.h"
#include "eval/tasks/prompt_encoder.h"

namespace vortex::eval {

// One sentence of filler text from the fixed word lists ("The quiet otter carried a lantern
// near the harbor.").
std::string filler_sentence(Rng& rng);

// A sentence to hide in the haystack at `depth` (0 = first, 1 = last, relative to the filler
// sentences). Needles at equal depth keep their order.
struct Needle {
  std::string text;
  double depth = 0;
};

// head + filler sentences with the needles inserted + tail, whose model input is `context`
// tokens, or a few fewer where the tokenizer cannot split the difference. Throws vortex::Error
// naming `task` when even the head, needles and tail do not fit.
std::string build_haystack_body(const std::string& task, const std::string& head,
                                const std::vector<Needle>& needles, const std::string& tail,
                                int32_t context, const PromptEncoder& encoder, Rng& rng);

// The body text head + units joined by single spaces + tail.
std::string join_units(const std::string& head, const std::vector<std::string>& units,
                       const std::string& tail);

// Brings head + units + tail to exactly `context` input tokens where possible, never above:
// drops units marked removable from the end while too long, appends units from `pad` while too
// short (`pad(room)` returns a unit of at most `room` tokens after a space, or "" when it has
// none). Returns the final token count. Throws
// vortex::Error naming `task` when no removable unit is left and the text is still too long.
int32_t fit_units_to_context(const std::string& task, const std::string& head,
                             std::vector<std::string>& units, std::vector<char>& removable,
                             const std::string& tail, int32_t context, const PromptEncoder& encoder,
                             const std::function<std::string(int32_t)>& pad);

}  // namespace vortex::eval
