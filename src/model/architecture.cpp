#include "model/architecture.h"

#include "core/error.h"
#include "model/architectures/llama_family.h"

namespace vortex {

const Architecture& architecture_of(Arch arch) {
  switch (arch) {
    case Arch::kQwen3:
      return qwen3_architecture();
    case Arch::kLlama:
      return llama_architecture();
  }
  fail("internal error: no description of architecture ", static_cast<int>(arch));
}

}  // namespace vortex
