// The CUDA code generator's state and passes (cuda_codegen.cpp explains how values become
// code). Its methods are split by job: generator_analysis.cpp (facts about the program's
// values, the emission primitives, indices), generator_values.cpp (values and reductions),
// generator_materialize.cpp (values computed once and read back) and generator_kernels.cpp
// (the summarize, per-page score, fused score-and-select and per-row kernels). Internal to
// src/flow/codegen.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "flow/codegen/cuda_codegen.h"
#include "flow/codegen/emit_support.h"
#include "flow/codegen/reduction_rewrite.h"

namespace vortex::flow::codegen {

// ---- concrete facts about one function's values ----------------------------------------------

struct ValueFacts {
  std::vector<int64_t> ext;      // per axis; -1 for the page axis N
  std::vector<int64_t> strides;  // row-major over the non-N axes; 0 for N
  bool has_n = false;            // leading axis is N
  int64_t numel = 1;             // elements per page (or in all, without N)
};

constexpr int kMaxTile = 32;               // outputs accumulated together per reduced index
constexpr int64_t kMaxUnrolledStore = 64;  // elements stored with constant indices
constexpr int64_t kMaxPerThreadFloats = 1024;
constexpr int64_t kMaxRowPartials = 64;
constexpr int64_t kMaxSharedBytes = 48 * 1024;
// Bytes of statements the generator may emit for one flow, all kernels and attempts together:
// values are inlined and re-indexed per use, so a hostile score (e.g. x = x + x.transpose(...)
// over and over) could otherwise generate without end.
constexpr int64_t kMaxGeneratedBytes = int64_t{4} << 20;
// Bytes of the source handed to NVRTC, whose time and memory grow faster than the source (on a
// loaded 2-core machine a 900 KB flow took 157 s and 1.2 GB; 200 KB of per-page softmaxes 30 s,
// 260 KB of subpage_quest at G = 8 4.4 s). The shipped flows generate 25-90 KB at G = 2 and at
// most 260 KB at G = 8.
constexpr int64_t kMaxCudaSourceBytes = int64_t{512} << 10;
// Shared memory of the selection in a fused score-and-select kernel (VxSelectShared of
// kernels/cuda/select_row.cuh: keys and pages of 4096 scoreable pages, a 256-bin histogram, 32
// warp totals, three ints; the generated code checks it).
constexpr int64_t kSelectSharedBytes = 2 * 4 * 4096 + 4 * 256 + 8 * 32 + 16;

// ---- the generator ---------------------------------------------------------------------------

enum class Context {
  kSummarize,  // block per (page, head), values in shared memory
  kPrologue,   // score, block-wide: row-invariant values
  kRowBlock,   // score row kernel, block-wide: row values after a cross-page pass
  kPage,       // score, one thread per page
};

enum class KernelKind { kSummarize, kScorePages, kScoreRows };

struct Storage {
  enum Kind { kShared, kSharedBf16, kScratch, kPerThread, kRowSoftmax } kind = kShared;
  std::string name;  // array name (softmax: the max array; name2 the sum array)
  std::string name2;
  int64_t offset = 0;  // scratch offset in floats
};

// One block of generated statements: a loop body or a scope. Loads that can be hoisted are
// placed in `hoisted`, which precedes `body`.
struct Block {
  std::string header;  // e.g. "for (...) {" ("" for the root of a section)
  std::string hoisted;
  std::string body;
  std::map<std::string, std::string> cse;
  std::map<std::string, std::string> vectors;  // hoisted vector loads: key -> array name
  int level = 0;
  int indent = 0;
};

class Generator {
 public:
  Generator(const FlowProgram& program, const FlowGeometry& geometry,
            const CudaCodegenOptions& options)
      : program_(program), geometry_(geometry), options_(options) {}

  CudaFlowSource run();

 private:
  // -- program facts --
  [[noreturn]] void unsupported(const Op& op, const std::string& what) const {
    throw CudaCodegenError(
        program_.filename, op.loc,
        str_cat("the CUDA generator cannot compile '", op_kind_name(op.kind), "' here: ", what));
  }
  void analyse(const Function& fn, std::vector<ValueFacts>& facts);
  void analyse_score();
  bool mixes_pages(ValueId id) const;

  // -- emission primitives --
  Block& top() { return stack_.back(); }
  void count_emitted(size_t bytes);
  void line(const std::string& s, const SourceLoc* loc = nullptr);
  void open(const std::string& header);
  void close();
  std::string take_root();  // text of the root block of the stack (which must be alone)
  std::string new_name(const char* prefix) { return prefix + std::to_string(counter_++); }
  struct OriginGuard {
    Generator& g;
    SourceLoc saved;
    OriginGuard(Generator& gen, SourceLoc loc) : g(gen), saved(gen.origin_) { g.origin_ = loc; }
    ~OriginGuard() { g.origin_ = saved; }
  };
  // Runs fn with a fresh emission stack whose root is at `level`, returns its text.
  std::string in_new_stack(int level, int indent, const std::function<void()>& fn);

  // -- values --
  const std::vector<ValueFacts>& facts() const {
    return fn_->phase == Phase::kSummarize ? sum_facts_ : score_facts_;
  }
  const ValueFacts& fact(ValueId id) const { return facts()[static_cast<size_t>(id)]; }
  Affine flat(ValueId id, const Index& idx) const;
  Index unflatten(ValueId id, const std::string& e) const;
  Index operand_index(const Op& op, size_t k, const Index& idx) const;  // elementwise broadcast
  Index remap_index(const Op& op, const Index& idx) const;
  std::string value(ValueId id, const Index& idx);
  std::string compute(ValueId id, const Index& idx);
  std::string read(const Storage& s, ValueId id, const Index& idx);
  std::string field_load(const Op& op, const Index& idx);
  std::string bind(const std::string& expr, const std::string& key);

  // -- reductions --
  struct ReduceSpec {
    Combine combine = Combine::kSum;
    std::vector<int64_t> extents;  // reduced loop extents
    double divisor = 1;            // mean-like: the count
    bool sqrt_result = false;
    // the value to combine for tile element t at reduced indices r
    std::function<std::string(size_t t, const std::vector<Affine>& r)> body;
  };
  std::vector<std::string> reduce_loops(const ReduceSpec& spec, size_t tiles);
  ReduceSpec reduce_spec(ValueId id, const std::vector<Index>& outs);
  void softmax_row(ValueId id, const Index& out_base, int axis, std::string* max_out,
                   std::string* sum_out);

  // -- materializations --
  void request_block_shared(ValueId id, Context ctx);
  void request_page_values(ValueId id);
  void request_state(ValueId id);
  void request_cross(ValueId id);
  void materialize_block_element(ValueId id, const std::string& target, const Index& idx);

  // -- kernels --
  std::string declare_shared(const std::string& name, int64_t count, bool bf16 = false);
  void begin_kernel(const Function* fn, KernelKind kind, Context ctx);
  void check_shared_bytes(const char* what) const;
  std::string q_pointer() const;
  std::string gen_summarize(const std::string& name);
  std::string page_kernel_body(bool write_outputs, int lanes);
  std::string lane_group_decls(int lanes) const;
  std::string gen_page_kernel(const std::string& name, bool write_outputs, int lanes);
  std::string gen_score_select_kernel(const std::string& name, int lanes);
  CudaScoreKernel add_page_kernel(const std::string& name, bool write_outputs,
                                  std::string& kernels);
  int auto_lanes() const;
  std::string gen_row_kernel(const std::string& name);
  void open_page_scope();
  void close_page_scope(std::string& head);
  void emit_outputs(bool to_scratch);
  void for_each_element(ValueId id, const std::function<void(const Index&)>& fn);

  const FlowProgram& program_;
  FlowGeometry geometry_;
  CudaCodegenOptions options_;
  FlowProgram rewritten_;
  const Function* fn_ = nullptr;
  std::vector<ValueFacts> sum_facts_, score_facts_;
  std::vector<int> level_;   // score: cross-page depth of each op
  std::vector<bool> cheap_;  // score: per-page value cheap to recompute (no reduction in cone)
  // Per FlowProgram field: offset in its block (a Field: in 16-bit units of the GPU block,
  // CudaFlowSource::fields; a State: in floats), values, and the scale slot of an int8 Field
  // (-1 otherwise).
  std::vector<int64_t> field_offset_;
  std::vector<int64_t> field_floats_;
  std::vector<int> field_scale_;
  int num_scales_ = 0;  // int8 Fields: scales per (page, KV head) block
  int64_t field_floats_total_ = 0, state_floats_total_ = 0;

  // Per kernel.
  KernelKind kernel_ = KernelKind::kSummarize;
  Context ctx_ = Context::kSummarize;
  std::vector<Block> stack_;
  std::map<ValueId, Storage> kernel_storage_;
  std::map<ValueId, Storage> page_storage_;  // per per-page scope
  std::string shared_decls_, prologue_, passes_;
  std::string* page_head_ = nullptr;  // where per-page materializations go
  int page_level_ = 0;
  int64_t shared_bytes_ = 0;
  std::map<std::string, std::pair<int, int>> vars_;  // loop var -> (level, alignment)
  SourceLoc origin_;
  int counter_ = 0;
  int64_t emitted_bytes_ = 0;  // against kMaxGeneratedBytes
  std::vector<ValueId> scratch_values_;
  int64_t scratch_floats_ = 0;
  // Cooperative per-page kernel: lanes per page (1: one thread per page), the reductions split
  // over the lanes so far, and the prefix of output stores (only the group's lane 0 writes).
  int lanes_ = 1;
  int lane_splits_ = 0;
  int64_t lane_loads_ = 0;  // 16-byte field loads per lane and page in the split reductions
  std::string store_guard_;
  bool fused_select_ = false;  // generating the fused score-and-select kernel
};

}  // namespace vortex::flow::codegen
