#include "cli/scheduling_flags.h"

namespace vortex::cli {

void add_prefill_first_flag(CLI::App* cmd, bool& prefill_first) {
  cmd->add_flag("--prefill-first", prefill_first,
                "Steps that can prefill carry only prefill work (prompts first, decodes wait): "
                "requests decode in lockstep, as in throughput-oriented servers; default: decodes "
                "first, prefill chunks fill the rest of each step");
}

}  // namespace vortex::cli
