#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <sstream>

#include "core/error.h"
#include "flow/codegen/embedded_sources.h"
#include "flow/codegen/generator.h"
#include "flow/cpu_executor.h"
#include "flow/shape_inference.h"
#include "flow/slice_range.h"

namespace vortex::flow::codegen {

// ---- kernels ---------------------------------------------------------------------------------

void Generator::for_each_element(ValueId id, const std::function<void(const Index&)>& fn) {
  const ValueFacts& f = fact(id);
  if (f.numel <= kMaxUnrolledStore) {
    for (int64_t e = 0; e < f.numel; ++e) {
      Index idx(f.ext.size(), aff(0));
      int64_t rem = e;
      for (size_t a = f.ext.size(); a-- > 0;) {
        if (f.ext[a] <= 1) continue;
        idx[a] = aff(rem % f.ext[a]);
        rem /= f.ext[a];
      }
      fn(idx);
    }
    return;
  }
  Index idx(f.ext.size(), aff(0));
  size_t opened = 0;
  for (size_t a = 0; a < f.ext.size(); ++a) {
    if (f.ext[a] <= 1) continue;
    const std::string v = new_name("o");
    open("for (int " + v + " = 0; " + v + " < " + std::to_string(f.ext[a]) + "; ++" + v + ") {");
    vars_[v] = {top().level, 1};
    idx[a] = aff_var(v);
    ++opened;
  }
  fn(idx);
  for (size_t i = 0; i < opened; ++i) close();
}

// Declares the page's pointers (i is the scoreable page; row and h are known) and opens the
// per-page scope, whose hoisted loads then come after the declarations.
void Generator::open_page_scope() {
  OriginGuard generated(*this, SourceLoc{});
  line(fused_select_ ? "const int page = vx_select_row_page(sr, s_sel, i);"
                     : "const int page = a.pages[page_base + i];");
  line("const long long block = (long long)page * a.num_kv_heads + h;  // State: page-major");
  line("const long long fblock = (long long)h * a.num_pages + page;  // Fields: head-major");
  line("const vx_bf16* fld = a.fields + fblock * a.field_stride;");
  line("const unsigned char* fld8 = (const unsigned char*)fld;");
  for (int j = 0; j < num_scales_; ++j) {
    line(str_cat("const float fsc", j, " = a.field_scales[fblock * ", num_scales_, " + ", j, "];"));
    line(str_cat("const float fbias", j, " = fsc", j, " * 8388736.0f;  // (2^23 + 128) * scale"));
  }
  line("float* st = a.state + block * a.state_stride;");
  line(
      "float* ps = a.page_scratch + ((long long)row * a.max_pages + i) * "
      "VX_PAGE_SCRATCH_FLOATS;");
  open("{");
  page_level_ = top().level;
}

// Puts the per-page materializations at the head of the scope and closes it.
void Generator::close_page_scope(std::string& head) {
  top().body.insert(0, head);
  close();
}

// The kernel's outputs in a per-page scope: page_scratch values, or scores and State stores.
void Generator::emit_outputs(bool to_scratch) {
  const Function& fn = rewritten_.score;
  if (to_scratch) {
    int64_t off = 0;  // the row kernel's layout: scratch values in the order it asked for them
    for (ValueId id : scratch_values_) {
      for_each_element(id, [&](const Index& idx) {
        const std::string v = value(id, idx);
        line(store_guard_ + "ps[" + str(flat(id, idx) + aff(off)) + "] = " + v + ";");
      });
      off += fact(id).numel;
    }
    return;
  }
  struct Write {
    std::string target, value;
    SourceLoc loc;
    bool score = false;  // the page's score (the fused kernel also keeps it as a key)
  };
  std::vector<Write> writes;  // stores after all values exist
  if (lanes_ > 1) {
    // Every lane of the group has read the page's State (at the head of the scope) before the
    // group's lane 0 overwrites it.
    bool stores_state = false;
    for (const Op& op : fn.ops) stores_state = stores_state || op.kind == OpKind::kStoreField;
    if (stores_state) line("__syncwarp(gmask);");
  }
  {
    const ValueId r = fn.result;
    OriginGuard origin(*this, fn.ops[static_cast<size_t>(r)].loc);
    Index idx(fact(r).ext.size(), aff(0));
    writes.push_back({"a.scores[(long long)row * a.max_pages + i]", value(r, idx), origin_, true});
  }
  for (const Op& op : fn.ops) {
    if (op.kind != OpKind::kStoreField) continue;
    const ValueId v = op.operands[0];
    const int64_t off = field_offset_[static_cast<size_t>(op.field)];
    OriginGuard origin(*this, op.loc);
    for_each_element(v, [&](const Index& idx) {
      const std::string x = value(v, idx);
      if (fact(v).numel <= kMaxUnrolledStore)
        writes.push_back({"st[" + str(flat(v, idx) + aff(off)) + "]", x, op.loc});
      else
        line(store_guard_ + "st[" + str(flat(v, idx) + aff(off)) + "] = " + x + ";");
    });
  }
  for (const Write& w : writes) {
    if (w.score && fused_select_) {
      // The score also goes to the row's selection, as its key (rows of up to VX_SELECT_CACHED
      // scoreable pages; longer rows are selected from the scores in global memory).
      line(str_cat(store_guard_, "{ const float sc = ", w.value, "; ", w.target,
                   " = sc; if (i < VX_SELECT_CACHED) s_sel.keys[i] = "
                   "vx_score_key(__float_as_uint(sc)); }"),
           &w.loc);
    } else {
      line(store_guard_ + w.target + " = " + w.value + ";", &w.loc);
    }
  }
}

// Starts generating a kernel of `kind` for `fn`: forgets what the previous kernel stored,
// declared and materialized.
void Generator::begin_kernel(const Function* fn, KernelKind kind, Context ctx) {
  fn_ = fn;
  kernel_ = kind;
  ctx_ = ctx;
  kernel_storage_.clear();
  page_storage_.clear();
  shared_decls_.clear();
  prologue_.clear();
  passes_.clear();
  shared_bytes_ = 0;
}

// Throws when the kernel being generated needs more shared memory than a block may have.
void Generator::check_shared_bytes(const char* what) const {
  if (shared_bytes_ > kMaxSharedBytes)
    throw CudaCodegenError(
        program_.filename, fn_->loc,
        str_cat("the CUDA generator needs ", shared_bytes_, " bytes of shared memory for ", what,
                " (at most ", kMaxSharedBytes, ")"));
}

// The declaration of qp, the row's G query heads in q (score kernels; needs row and h).
std::string Generator::q_pointer() const {
  return str_cat("const vx_bf16* qp = a.q + ((long long)a.q_rows[row / a.num_kv_heads] * ",
                 "a.num_q_heads + (long long)h * ", geometry_.G, ") * ", geometry_.D, ";");
}

std::string Generator::gen_summarize(const std::string& name) {
  begin_kernel(&rewritten_.summarize, KernelKind::kSummarize, Context::kSummarize);
  page_head_ = nullptr;
  if (num_scales_ > 0) declare_shared("s_int8_red", 32);
  std::string body = in_new_stack(0, 1, [&] {
    line("const long long fblock = (long long)h * a.num_pages + page;  // head-major");
    line(
        "vx_bf16* fo = a.fields + (long long)layer * a.field_layer_stride + fblock * "
        "a.field_stride;");
    for (const Op& op : fn_->ops) {
      if (op.kind != OpKind::kStoreField) continue;
      OriginGuard origin(*this, op.loc);
      const ValueId v = op.operands[0];
      const ValueFacts& f = fact(v);
      const int64_t off = field_offset_[static_cast<size_t>(op.field)];
      const int scale = field_scale_[static_cast<size_t>(op.field)];
      // fn(e, x): the statement for element e (a loop variable) of value x.
      auto for_elements =
          [&](const std::function<void(const std::string&, const std::string&)>& fn) {
            const std::string e = new_name("e");
            open(str_cat("for (int ", e, " = threadIdx.x; ", e, " < ", f.numel, "; ", e,
                         " += blockDim.x) {"));
            fn(e, value(v, unflatten(v, e)));
            close();
          };
      if (scale < 0) {
        for_elements([&](const std::string& e, const std::string& x) {
          line(str_cat("fo[", off, " + ", e, "] = vx_f2bf(", x, ");"));
        });
        continue;
      }
      // int8: the block's largest magnitude sets a power-of-two scale (NaN if a value is NaN);
      // each value is stored as round(x / scale) + 128 (flow/field_storage.h).
      const std::string m = new_name("amax"), se = new_name("se");
      line(str_cat("float ", m, " = 0.0f;"));
      for_elements([&](const std::string&, const std::string& x) {
        line(str_cat(m, " = vx_max(", m, ", fabsf(", x, "));"));
      });
      line(str_cat(m, " = vx_block_max(", m, ", s_int8_red);"));
      line(str_cat("const int ", se, " = vx_int8_scale_exponent(", m, ");"));
      const std::string codes = new_name("i8");
      line(str_cat("unsigned char* ", codes, " = (unsigned char*)(fo + ", off, ");"));
      for_elements([&](const std::string& e, const std::string& x) {
        line(str_cat(codes, "[", e, "] = (unsigned char)vx_int8_code((", x, ") * ldexpf(1.0f, -",
                     se, "));"));
      });
      line(
          str_cat("if (threadIdx.x == 0) a.field_scales[(long long)layer * a.scale_layer_stride + "
                  "fblock * ",
                  num_scales_, " + ", scale, "] = ", m, " != ", m, " ? vx_nan() : ldexpf(1.0f, ",
                  se, ");"));
    }
  });
  check_shared_bytes("summarize");
  std::string k;
  k += str_cat("extern \"C\" __global__ void __launch_bounds__(", kCudaSummarizeThreads, ") ", name,
               "(const CudaSummarizeArgs a) {\n");
  k += shared_decls_;
  k += "  if ((int)blockIdx.x >= *a.num_items) return;\n";
  k += "  const int page = a.items[blockIdx.x];\n";
  k += "  const int h = blockIdx.y;\n";
  k += "  const int layer = a.layers ? a.layers[blockIdx.z] : (int)blockIdx.z;\n";
  k += "  const long long kv_base = (long long)layer * a.kv_layer_stride + (long long)page * "
       "a.page_stride + (long long)h * a.head_stride;\n";
  k += "  (void)kv_base;\n";
  k += prologue_;
  k += "  __syncthreads();\n";
  k += passes_;
  k += body;
  k += "}\n";
  return k;
}

// The per-page scope of a per-page kernel (its shared declarations and prologue are left in
// shared_decls_ and prologue_). lanes > 1: the cooperative form, `lanes` threads per page
// (lane_splits_ then counts the reductions split over them).
std::string Generator::page_kernel_body(bool write_outputs, int lanes) {
  begin_kernel(&rewritten_.score, KernelKind::kScorePages, Context::kPage);
  lanes_ = lanes;
  lane_splits_ = 0;
  lane_loads_ = 0;
  store_guard_ = lanes > 1 ? "if (lane == 0) " : "";
  std::string head;
  page_head_ = &head;
  std::string body = in_new_stack(1, 3, [&] {
    open_page_scope();
    emit_outputs(!write_outputs);
    close_page_scope(head);
  });
  page_head_ = nullptr;
  lanes_ = 1;
  store_guard_.clear();
  return body;
}

// The group of `lanes` adjacent lanes that shares a page, and its shuffle mask.
std::string Generator::lane_group_decls(int lanes) const {
  if (lanes <= 1) return "";
  std::string k;
  k += str_cat("  const int lane = (int)threadIdx.x & ", lanes - 1, ";\n");
  k += str_cat("  const unsigned gmask = 0xffffffffu >> ", 32 - lanes, " << ((int)threadIdx.x & ",
               32 - lanes, ");\n");
  k += "  (void)lane; (void)gmask;\n";
  return k;
}

// The per-page kernel: outputs are the scratch values (before a row kernel) or the scores and
// State stores.
std::string Generator::gen_page_kernel(const std::string& name, bool write_outputs, int lanes) {
  const std::string body = page_kernel_body(write_outputs, lanes);
  check_shared_bytes("score");
  std::string k;
  k += str_cat("extern \"C\" __global__ void __launch_bounds__(", kCudaScorePageThreads, ") ", name,
               "(const CudaScoreArgs a) {\n");
  k += shared_decls_;
  k += lane_group_decls(lanes);
  k += "  const int num_items = *a.num_items;\n";
  k += "  int prologue_row = -1;\n";
  k += "  for (int it = blockIdx.x; it < num_items; it += gridDim.x) {\n";
  k += "    const int row = a.item_row[it];\n";
  k += "    const int count = a.row_count[row];\n";
  k += "    const int h = row % a.num_kv_heads;\n";
  k += "    const int page_base = a.row_page_offset[row] + a.row_first[row];\n";
  k += "    (void)count; (void)h; (void)page_base;\n";
  if (!prologue_.empty()) {
    k += "    if (row != prologue_row) {  // row-invariant values, once per row\n";
    k += "      __syncthreads();\n";
    k += str_cat("      ", q_pointer(), "\n");
    k += "      (void)qp;\n";
    k += prologue_;
    k += "      prologue_row = row;\n";
    k += "    }\n";
  }
  if (lanes > 1) {
    // The group's pages of the item: i, i + groups, ... (the same for every lane of a group, so
    // its shuffles see all of its lanes).
    k += str_cat("    const int end = min(a.item_begin[it] + ", kCudaScorePageThreads,
                 ", count);\n");
    k += str_cat("    for (int i = a.item_begin[it] + (int)threadIdx.x / ", lanes,
                 "; i < end; i += ", kCudaScorePageThreads / lanes, ") {\n");
  } else {
    k += "    const int i = a.item_begin[it] + (int)threadIdx.x;\n";
    k += "    if (i < count) {\n";
  }
  k += body;
  k += "    }\n";
  k += "  }\n";
  k += "}\n";
  return k;
}

// The fused score-and-select kernel (cuda_flow_abi.h): one block per row runs the per-page
// kernel's scope over all of the row's scoreable pages, their physical numbers read from the
// selection's shared-memory cache, then selects with kernels/cuda/select_row.cuh. Returns ""
// when the kernel's shared memory would not fit.
std::string Generator::gen_score_select_kernel(const std::string& name, int lanes) {
  fused_select_ = true;
  const std::string body = page_kernel_body(true, lanes);
  fused_select_ = false;
  if (shared_bytes_ + kSelectSharedBytes > kMaxSharedBytes) return "";
  const int groups = kCudaScoreSelectThreads / lanes;
  std::string k;
  k += str_cat("extern \"C\" __global__ void __launch_bounds__(", kCudaScoreSelectThreads, ", 2) ",
               name, "(const CudaScoreArgs a) {\n");
  k += shared_decls_;
  k += "  __shared__ VxSelectShared s_sel;\n";
  k += lane_group_decls(lanes);
  k += "  const int row = blockIdx.x;\n";
  k += "  if (row >= a.num_rows) return;\n";
  k += "  const VxSelectRow sr = vx_select_row_plan(row, a.page_size, a.max_pages, "
       "a.row_page_offset, a.pages, a.row_num_tokens, a.row_first, a.row_count, a.row_k, "
       "a.row_recent_begin, a.out_pages);\n";
  k += "  const int count = sr.count;\n";
  k += "  const int h = row % a.num_kv_heads;\n";
  k += "  (void)count; (void)h;\n";
  if (!prologue_.empty()) {
    // Row-invariant values first: their reads overlap the plan's.
    k += "  {\n";
    k += str_cat("    ", q_pointer(), "\n");
    k += "    (void)qp;\n";
    k += prologue_;
    k += "  }\n";
  }
  k += "  if (!vx_select_row_begin(sr, s_sel, a.page_size, a.out_num_tokens + row)) return;\n";
  k += "  __syncthreads();\n";
  k += str_cat("  for (int i = (int)threadIdx.x / ", lanes, "; i < count; i += ", groups, ") {\n");
  k += body;
  k += "  }\n";
  k += "  __syncthreads();\n";
  k += "  vx_select_row_finish(sr, s_sel, a.scores + (long long)row * a.max_pages);\n";
  k += "}\n";
  return k;
}

// The largest group size the options leave to the generator: 16-byte chunks of D spread over up
// to 8 lanes (a 128-byte row per load instruction of a group for D >= 64).
int Generator::auto_lanes() const {
  for (int l : {8, 4, 2})
    if (geometry_.D % (8 * l) == 0) return l;
  return 1;
}

// Generates the per-page kernel, cooperative where the options and the program allow, and
// appends it to `kernels`. The automatic choice halves the group (from auto_lanes()) until each
// lane has at least 4 field loads per page in flight: on an H100 (qwen3-1.7b, D = 128, 1024
// pages per row) block_topk's one centroid scored fastest with 4 lanes, quest's two fields with
// 8 (2 lanes: slower for both).
CudaScoreKernel Generator::add_page_kernel(const std::string& name, bool write_outputs,
                                           std::string& kernels) {
  const bool automatic = options_.score_lanes == 0;
  for (int lanes = automatic ? auto_lanes() : options_.score_lanes; lanes > 1; lanes /= 2) {
    std::string k = gen_page_kernel(name, write_outputs, lanes);
    if (lane_splits_ == 0) break;
    if (!automatic || lane_loads_ >= 4 || lanes == 2) {
      kernels += k + "\n";
      return {name, CudaKernelKind::kPerPage, lanes};
    }
  }
  kernels += gen_page_kernel(name, write_outputs, 1) + "\n";
  return {name, CudaKernelKind::kPerPage, 1};
}

std::string Generator::gen_row_kernel(const std::string& name) {
  begin_kernel(&rewritten_.score, KernelKind::kScoreRows, Context::kPage);
  scratch_values_.clear();
  scratch_floats_ = 0;
  declare_shared("s_red", 32);
  std::string head;
  page_head_ = &head;
  std::string final_pass = in_new_stack(0, 1, [&] {
    open("for (int i = threadIdx.x; i < count; i += blockDim.x) {");
    open_page_scope();
    emit_outputs(false);
    close_page_scope(head);
    close();
  });
  page_head_ = nullptr;
  check_shared_bytes("score's row kernel");
  std::string k;
  k += str_cat("extern \"C\" __global__ void __launch_bounds__(", kCudaScoreRowThreads, ") ", name,
               "(const CudaScoreArgs a) {\n");
  k += shared_decls_;
  k += "  const int row = blockIdx.x;\n";
  k += "  if (row >= a.num_rows) return;\n";
  k += "  const int count = a.row_count[row];\n";
  k += "  if (count <= 0) return;\n";
  k += "  const int h = row % a.num_kv_heads;\n";
  k += "  const int page_base = a.row_page_offset[row] + a.row_first[row];\n";
  k += "  (void)h; (void)page_base;\n";
  if (!prologue_.empty()) {
    k += str_cat("  ", q_pointer(), "\n");
    k += prologue_;
  }
  k += passes_;
  k += final_pass;
  k += "}\n";
  return k;
}

CudaFlowSource Generator::run() {
  if (geometry_.G <= 0 || geometry_.D <= 0 || geometry_.P <= 0)
    fail(program_.filename, ": the CUDA generator needs a concrete geometry, got G=", geometry_.G,
         " D=", geometry_.D, " P=", geometry_.P);
  // Field layout and geometry checks, exactly as the CPU executor binds them.
  CpuFlowExecutor reference(program_, geometry_);
  field_offset_.assign(program_.fields.size(), 0);
  field_floats_.assign(program_.fields.size(), 0);
  field_scale_.assign(program_.fields.size(), -1);
  // The GPU block of a (page, KV head): the Fields in declaration order, in 16-bit units; a bf16
  // Field takes one unit a value, an int8 Field one byte a value from a 16-byte boundary.
  CudaFlowSource out;
  int64_t units = 0;
  for (const FieldSlot& s : reference.field_slots()) {
    CudaFieldLayout layout;
    layout.field = s.field;
    if (s.int8) {
      units = (units + 7) / 8 * 8;
      layout.scale = num_scales_++;
    }
    layout.offset = static_cast<int32_t>(units);
    units += s.int8 ? (s.num_floats + 1) / 2 : s.num_floats;
    field_offset_[static_cast<size_t>(s.field)] = layout.offset;
    field_floats_[static_cast<size_t>(s.field)] = s.num_floats;
    field_scale_[static_cast<size_t>(s.field)] = layout.scale;
    out.fields.push_back(layout);
  }
  field_floats_total_ = reference.field_floats_per_page_head();
  for (const FieldSlot& s : reference.state_slots()) {
    field_offset_[static_cast<size_t>(s.field)] = state_floats_total_;
    field_floats_[static_cast<size_t>(s.field)] = s.num_floats;
    state_floats_total_ += s.num_floats;
  }

  rewritten_ = rewrite_reductions(program_, geometry_);
  analyse(rewritten_.summarize, sum_facts_);
  analyse_score();

  out.field_floats = static_cast<int32_t>(field_floats_total_);
  out.field_stride = static_cast<int32_t>((units + 7) / 8 * 8);
  out.field_scales = num_scales_;
  out.state_floats = static_cast<int32_t>(state_floats_total_);
  out.state_stride = static_cast<int32_t>((state_floats_total_ + 3) / 4 * 4);

  std::string base = program_.class_name.empty() ? "flow" : program_.class_name;
  for (char& c : base)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  std::string kernels;

  bool stores = false;
  for (const Op& op : rewritten_.summarize.ops) stores = stores || op.kind == OpKind::kStoreField;
  if (stores) {
    out.summarize_kernel = base + "_summarize";
    kernels += gen_summarize(out.summarize_kernel) + "\n";
  }
  const size_t summarize_bytes = kernels.size();

  bool cross = false;
  for (size_t i = 0; i < rewritten_.score.ops.size(); ++i)
    cross = cross || mixes_pages(static_cast<ValueId>(i));
  bool uses_select = false;
  if (!cross) {
    const CudaScoreKernel pages = add_page_kernel(base + "_score_pages", true, kernels);
    out.score_kernels.push_back(pages);
    const std::string fused = gen_score_select_kernel(base + "_score_select", pages.lanes);
    if (!fused.empty()) {
      kernels += fused + "\n";
      out.select_kernel = base + "_score_select";
      out.select_lanes = pages.lanes;
      uses_select = true;
    }
  } else {
    const std::string row_name = base + "_score_rows";
    const std::string row_kernel = gen_row_kernel(row_name);
    const std::vector<ValueId> scratch = scratch_values_;
    const int64_t scratch_floats = scratch_floats_;
    if (!scratch.empty())
      out.score_kernels.push_back(add_page_kernel(base + "_score_pages", false, kernels));
    kernels += row_kernel + "\n";
    out.score_kernels.push_back({row_name, CudaKernelKind::kPerRow});
    out.page_scratch_floats = static_cast<int32_t>(scratch_floats);
  }

  const size_t score_bytes = kernels.size() - summarize_bytes;
  std::string src;
  src += str_cat("// Generated by vortex from ", program_.filename, " (flow ", program_.class_name,
                 ") for G=", geometry_.G, " D=", geometry_.D, " P=", geometry_.P, ".\n");
  src += kCudaFlowAbiSource;
  src += kDeviceHelpersSource;
  src += abi_asserts();
  if (uses_select) {
    src += kSelectRowSource;
    src += str_cat("static_assert(VX_SELECT_THREADS == ", kCudaScoreSelectThreads,
                   ", \"the host launches the fused score-and-select kernel with ",
                   kCudaScoreSelectThreads, " threads\");\n");
    src += str_cat("static_assert(sizeof(VxSelectShared) <= ", kSelectSharedBytes,
                   ", \"the generator reserves ", kSelectSharedBytes,
                   " bytes of shared memory for the selection\");\n");
  }
  src += "\n" + kernels;
  for (size_t pos; (pos = src.find("VX_PAGE_SCRATCH_FLOATS")) != std::string::npos;)
    src.replace(pos, std::strlen("VX_PAGE_SCRATCH_FLOATS"),
                std::to_string(out.page_scratch_floats));
  out.source = finish_lines(src, program_.filename, program_.filename + ".cu");
  if (static_cast<int64_t>(out.source.size()) > kMaxCudaSourceBytes) {
    // Blame the phase whose kernels are the larger part.
    const Function& fn = out.summarize_kernel.empty() || score_bytes >= summarize_bytes
                             ? program_.score
                             : program_.summarize;
    throw CudaCodegenError(
        program_.filename, fn.loc,
        str_cat("the CUDA code generated for this flow is ", out.source.size(), " bytes; at most ",
                kMaxCudaSourceBytes, " (", kMaxCudaSourceBytes >> 10,
                " KiB: the generated code limit, which keeps NVRTC's time and "
                "memory bounded); simplify ",
                &fn == &program_.score ? "score" : "summarize"));
  }
  return out;
}

}  // namespace vortex::flow::codegen
