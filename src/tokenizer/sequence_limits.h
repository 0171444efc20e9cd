// Limits on the Sequence trees of tokenizer.json (normalizer, pre_tokenizer, decoder,
// post_processor), checked while they are built: the builders recurse once per level of
// nesting, and every part runs on every encode (a Split compiles a regex at load), so both the
// depth and the number of parts in all are bounded.
#pragma once

#include <string>

#include "core/error.h"
#include "tokenizer/tokenizer.h"

namespace vortex::tok {

// Counts the part at `field`; throws once a component has more than kMaxSequenceParts.
inline void count_sequence_part(const std::string& file, const std::string& field, int& parts) {
  if (++parts > kMaxSequenceParts) {
    fail(file, ": field '", field, "': more than ", kMaxSequenceParts, " parts in all (the limit)");
  }
}

// Throws when a Sequence at `field` would nest `depth` Sequences deep or deeper.
inline void check_sequence_depth(const std::string& file, const std::string& field, int depth) {
  if (depth >= kMaxSequenceDepth) {
    fail(file, ": field '", field, "': Sequences nested deeper than ", kMaxSequenceDepth,
         " levels (the limit)");
  }
}

}  // namespace vortex::tok
