// Device planning and top-k page selection (page_selection.h). plan_rows: one block walks the
// rows in tiles of one row per thread, plans each row with the arithmetic of
// flow::plan_row (a row of kRowReadAll is planned as read_all, one of kRowSkip with nothing to
// score and k = -1) and places its score
// worklist items with a block-wide exclusive scan.
// select_pages: one block per row selects with select_row.cuh (the code the fused
// score-and-select kernels of the flow code generator embed). Its global reads (plan, keys,
// page numbers) are all issued before its first write, so they overlap (11 % off the select
// pass on an H100).
#include <climits>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/page_selection.h"
#include "kernels/cuda/select_row.cuh"

namespace vortex::cuda {
namespace {

constexpr int kPlanThreads = 1024;

// flow::RowPlan in the form the kernels need; count 0 means the row reads all its pages.
struct DeviceRowPlan {
  int32_t num_pages;
  int32_t sink_end;
  int32_t recent_begin;
  int32_t count;
  int32_t k;
};

// flow::row_budget. __dmul_rn / __dsub_rn keep the compiler from fusing the multiply into the
// subtraction, so x and x - nearest round as they do on the host.
__device__ int32_t row_budget(const DevicePagePolicy& p, int32_t num_pages) {
  int64_t budget;
  if (p.pages >= 0) {
    budget = p.pages;
  } else {
    const double x = __dmul_rn(p.ratio, static_cast<double>(num_pages));
    const double nearest = round(x);
    const bool near_integer = fabs(__dsub_rn(x, nearest)) <= __dmul_rn(1e-9, fmax(1.0, x));
    budget = static_cast<int64_t>(near_integer ? nearest : ceil(x));
  }
  budget = max(budget, static_cast<int64_t>(p.floor));
  if (p.cap >= 0) budget = min(budget, static_cast<int64_t>(p.cap));
  return static_cast<int32_t>(min(budget, static_cast<int64_t>(INT32_MAX)));
}

// flow::plan_row for a row of `tokens` tokens.
__device__ DeviceRowPlan plan_row(const DevicePagePolicy& p, int32_t tokens, int32_t page_size) {
  DeviceRowPlan plan;
  const int32_t n =
      static_cast<int32_t>((static_cast<int64_t>(tokens) + page_size - 1) / page_size);
  const int32_t budget = row_budget(p, n);
  plan.num_pages = n;
  plan.sink_end = min(max(p.sink, 0), n);
  // The last page holds the token being decoded: always read it, whatever `recent` says.
  const int32_t recent = n > 0 ? min(max(p.recent, 1), n) : 0;
  plan.recent_begin = max(plan.sink_end, n - recent);
  const int32_t reserved = plan.sink_end + (n - plan.recent_begin);
  const bool read_all = n <= max(budget, reserved);
  plan.count = read_all ? 0 : plan.recent_begin - plan.sink_end;
  plan.k = read_all ? 0 : max(0, budget - reserved);
  return plan;
}

__global__ void __launch_bounds__(kPlanThreads) plan_rows_kernel(PlanRowsArgs a) {
  __shared__ int32_t warp_totals[32];
  int32_t items_before = 0;  // items of the earlier tiles
  for (int32_t tile = 0; tile < a.num_rows; tile += kPlanThreads) {
    const int32_t r = tile + static_cast<int32_t>(threadIdx.x);
    DeviceRowPlan plan{0, 0, 0, 0, 0};
    if (r < a.num_rows) {
      plan = plan_row(a.row_policy ? a.row_policy[r] : a.policy, a.row_num_tokens[r], a.page_size);
      const int32_t mode = a.row_mode != nullptr ? a.row_mode[r] : kRowPlan;
      if (mode != kRowPlan) {
        plan.count = 0;
        plan.k = mode == kRowSkip ? -1 : 0;
      }
      a.row_first[r] = plan.sink_end;
      a.row_count[r] = plan.count;
      a.row_k[r] = plan.k;
      a.row_recent_begin[r] = plan.recent_begin;
    }
    const int32_t items = (plan.count + a.chunk_pages - 1) / a.chunk_pages;
    int32_t tile_items;
    int32_t item = items_before + vx_block_exclusive_scan(items, warp_totals, &tile_items);
    for (int32_t begin = 0; begin < plan.count; begin += a.chunk_pages, ++item) {
      a.item_row[item] = r;
      a.item_begin[item] = begin;
    }
    items_before += tile_items;
  }
  if (threadIdx.x == 0) *a.num_items = items_before;
}

__global__ void __launch_bounds__(VX_SELECT_THREADS) select_pages_kernel(SelectPagesArgs a) {
  __shared__ VxSelectShared s;
  const int32_t row = static_cast<int32_t>(blockIdx.x);
  const VxSelectRow r = vx_select_row_plan(row, a.page_size, a.max_pages, a.row_page_offset,
                                           a.pages, a.row_num_tokens, a.row_first, a.row_count,
                                           a.row_k, a.row_recent_begin, a.out_pages);
  // The keys are read before anything is written, so their loads overlap the page numbers'.
  const float* scores = a.scores + static_cast<int64_t>(row) * a.max_pages;
  if (r.count > 0 && r.count <= VX_SELECT_CACHED) {
    const uint32_t* bits = reinterpret_cast<const uint32_t*>(scores);
    for (int32_t i = threadIdx.x; i < r.count; i += VX_SELECT_THREADS)
      s.keys[i] = vx_score_key(__ldg(bits + i));
  }
  if (!vx_select_row_begin(r, s, a.page_size, a.out_num_tokens + row)) return;
  __syncthreads();
  vx_select_row_finish(r, s, scores);
}

__global__ void __launch_bounds__(256) copy_dense_rows_kernel(CopyDenseRowsArgs a) {
  const int32_t row = static_cast<int32_t>(blockIdx.x);
  if (a.row_mode[row] != kRowReadAll) return;
  const int32_t tokens = a.row_num_tokens[row];
  const int32_t n =
      static_cast<int32_t>((static_cast<int64_t>(tokens) + a.page_size - 1) / a.page_size);
  const int32_t* dense = a.pages + a.row_page_offset[row];
  int32_t* out = a.out_pages + static_cast<int64_t>(row) * a.max_pages;
  for (int32_t i = static_cast<int32_t>(threadIdx.x); i < n; i += static_cast<int32_t>(blockDim.x))
    out[i] = dense[i];
  if (threadIdx.x == 0) a.out_num_tokens[row] = tokens;
}

}  // namespace

cudaError_t plan_rows(const PlanRowsArgs& args, cudaStream_t stream) {
  if (args.num_rows < 0 || args.page_size <= 0 || args.chunk_pages <= 0)
    return cudaErrorInvalidValue;
  // Launched even without rows: *num_items must become 0.
  plan_rows_kernel<<<1, kPlanThreads, 0, stream>>>(args);
  return cudaGetLastError();
}

cudaError_t select_pages(const SelectPagesArgs& args, cudaStream_t stream) {
  if (args.num_rows < 0 || args.page_size <= 0) return cudaErrorInvalidValue;
  if (args.num_rows > 0)
    select_pages_kernel<<<static_cast<unsigned>(args.num_rows), VX_SELECT_THREADS, 0, stream>>>(
        args);
  return cudaGetLastError();
}

cudaError_t copy_dense_rows(const CopyDenseRowsArgs& args, cudaStream_t stream) {
  if (args.num_rows < 0 || args.page_size <= 0 || args.row_mode == nullptr)
    return cudaErrorInvalidValue;
  if (args.num_rows > 0)
    copy_dense_rows_kernel<<<static_cast<unsigned>(args.num_rows), 256, 0, stream>>>(args);
  return cudaGetLastError();
}

}  // namespace vortex::cuda
