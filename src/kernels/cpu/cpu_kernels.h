// The CPU kernels of one instruction-set path, as a table of entry points. Each path
// (simd/kernels_<isa>.cpp) compiles the same kernel source for its own registers; the public
// kernels (linear.h, attention.h, norm.h, activation.h) check their arguments and call the table
// of active_cpu_isa(). Tests and benchmarks may call any supported path's table directly.
#pragma once

#include <cstdint>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/cpu_isa.h"
#include "kernels/cpu/linear.h"

namespace vortex::cpu {

// Up to 8 consecutive queries of one sequence, attended together (see attention.cpp).
struct AttentionBlock {
  int32_t seq;
  int32_t first;  // first query index within the sequence
  int32_t count;  // queries in the block
};

struct CpuKernels {
  CpuIsa isa;
  // y[M, N] = x[M, K] · wᵀ (+ bias[N]); arguments already checked.
  void (*linear)(const float* x, int64_t M, int64_t K, const PackedWeight& w, const float* bias,
                 float* y);
  // Every (block, KV head) item of a checked batch.
  void (*attention)(const float* q, int32_t num_q_heads, const PagedKv& kv,
                    const AttentionSeq* seqs, const AttentionBlock* blocks, int64_t num_blocks,
                    float scale, float* out);
  // out[r] = w · x[r] / sqrt(mean(x[r]²) + eps); w in f32.
  void (*rms_norm)(const float* x, int64_t rows, int64_t dim, const float* w, float eps,
                   float* out);
  void (*silu_mul)(const float* gate, const float* up, int64_t n, float* out);
  // The reductions every kernel follows (exposed for tests and for callers outside kernels/).
  void (*exp_shifted)(const float* x, float shift, int64_t n, float* out);
  float (*dot)(const float* a, const float* b, int64_t n);
  // out[r * 4 + c] = dot(a[r], b[c], n): the attention scores' 4 × 4 tile, folded together.
  void (*dot4x4)(const float* const* a, const float* const* b, int64_t n, float* out);
};

// The table of one path; throws vortex::Error if this CPU cannot run it.
const CpuKernels& cpu_kernels_for(CpuIsa isa);
// The table of active_cpu_isa().
const CpuKernels& cpu_kernels();

namespace isa_baseline {
const CpuKernels& kernels();
}
namespace isa_avx2 {
const CpuKernels& kernels();
}
namespace isa_avx512 {
const CpuKernels& kernels();
}

}  // namespace vortex::cpu
