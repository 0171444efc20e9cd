// CUDA code generation for a compiled flow: the IR's summarize and score functions become CUDA
// C++ kernels that follow the calling convention of cuda_flow_abi.h. The source is compiled at
// run time with NVRTC (nvrtc_compiler.h) for the GPU at hand.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "flow/ir.h"

namespace vortex::flow {

enum class CudaKernelKind : uint8_t {
  kPerPage,  // worklist of (row, chunk of kCudaScorePageThreads pages); any grid size
  kPerRow,   // one block per row, grid = num_rows
};

struct CudaScoreKernel {
  std::string name;  // extern "C" symbol in the generated source
  CudaKernelKind kind = CudaKernelKind::kPerPage;
  // Per-page kernels: threads that cooperate on one page. 1: one thread per page. L > 1: a group
  // of L adjacent lanes of a warp splits the page's reductions over their innermost axis (D for
  // the usual q . field), so a group's loads of a field row are contiguous; the group's first
  // lane writes the page's outputs.
  int32_t lanes = 1;
};

// Where one Field lives in the GPU's block of a (page, KV head): from offset (in 16-bit units),
// one bf16 a value, or for an int8 Field one byte a value (the integer + 128), decoded with scale
// slot `scale` of the block's scales (field_storage.h).
struct CudaFieldLayout {
  int field = -1;      // index into FlowProgram::fields
  int32_t offset = 0;  // 16-bit units from the block's start (a multiple of 8 for int8)
  int scale = -1;      // int8: slot in the block's field_scales floats; bf16: -1
};

struct CudaFlowSource {
  std::string source;            // self-contained CUDA C++ (no #include)
  std::string summarize_kernel;  // "" when summarize stores nothing (no launch needed)
  std::vector<CudaScoreKernel> score_kernels;  // launched in this order
  // The fused score-and-select kernel (cuda_flow_abi.h), "" when the flow has none (its score
  // has cross-page ops, or the kernel's shared memory would not fit); select_lanes: its lanes
  // per page, as CudaScoreKernel::lanes.
  std::string select_kernel;
  int32_t select_lanes = 1;
  std::vector<CudaFieldLayout> fields;  // the Fields, in declaration order
  int32_t field_floats = 0;         // values per (page, KV head) of all Fields (FieldSlot layout)
  int32_t field_stride = 0;         // 16-bit units per GPU block (a multiple of 8), or 0
  int32_t field_scales = 0;         // f32 scales per block: one per int8 Field
  int32_t state_floats = 0;         // values per (page, KV head) of all States
  int32_t state_stride = 0;         // f32 elements per block: state_floats rounded up to 4, or 0
  int32_t page_scratch_floats = 0;  // per (row, scoreable page), between score kernels
  int32_t row_scratch_floats = 0;   // per row, between score kernels
};

// What generate_cuda_flow throws for a construct it cannot compile: what() is
// "file:line:col: error: <detail>"; loc and detail let a caller render it as a flow diagnostic.
class CudaCodegenError : public Error {
 public:
  CudaCodegenError(const std::string& file, SourceLoc loc, const std::string& detail)
      : Error(str_cat(file, ":", loc.line, ":", loc.col, ": error: ", detail)),
        loc_(loc),
        detail_(detail) {}
  SourceLoc loc() const { return loc_; }
  const std::string& detail() const { return detail_; }

 private:
  SourceLoc loc_;
  std::string detail_;
};

struct CudaCodegenOptions {
  // Lanes per page of the per-page score kernel: 0 picks a group size for the geometry (8 lanes,
  // fewer when D / 8 is smaller); 1 forces one thread per page; a power of two from 2 to 32
  // asks for that many. The generator falls back to one thread per page when the score program
  // has no per-page reduction whose innermost extent is a multiple of 8 * lanes.
  int score_lanes = 0;
};

// CudaCodegenOptions::score_lanes from its text form (the --flow-score-lanes flag): "auto" (or
// empty) 0, "thread" 1, or the lanes per page "2", "4", "8", "16", "32". Throws vortex::Error
// for anything else.
int parse_score_lanes(std::string_view value);

// Generates the kernels of `program` for a concrete geometry (G, D, P all positive). Throws
// vortex::Error naming the flow file, line and op for what the generator does not support
// (CudaCodegenError), or for a geometry the flow's shapes do not fit.
CudaFlowSource generate_cuda_flow(const FlowProgram& program, const FlowGeometry& geometry,
                                  const CudaCodegenOptions& options = {});

}  // namespace vortex::flow
