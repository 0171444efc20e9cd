// libFuzzer entry point of the flow_check target; the body is fuzz_flow_check (fuzz_targets.h).
#include "fuzz_targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return vortex::fuzz::run_fuzz_input(vortex::fuzz::fuzz_flow_check, data, size);
}
