#include "kernels/cpu/cpu_kernels.h"

#include "core/error.h"

namespace vortex::cpu {

const CpuKernels& cpu_kernels_for(CpuIsa isa) {
  if (!cpu_supports(isa)) fail("this CPU cannot run the ", cpu_isa_name(isa), " kernels");
  switch (isa) {
    case CpuIsa::kAvx512:
      return isa_avx512::kernels();
    case CpuIsa::kAvx2:
      return isa_avx2::kernels();
    case CpuIsa::kBaseline:
      break;
  }
  return isa_baseline::kernels();
}

const CpuKernels& cpu_kernels() {
  static const CpuKernels& active = cpu_kernels_for(active_cpu_isa());
  return active;
}

}  // namespace vortex::cpu
