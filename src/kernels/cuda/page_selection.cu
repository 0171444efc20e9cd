// Device planning and top-k page selection (page_selection.h). plan_rows: one block walks the
// rows in tiles of one row per thread, plans each row with the arithmetic of
// flow::plan_row (a row flagged in row_read_all is planned as read_all) and places its score
// worklist items with a block-wide exclusive scan.
// select_pages: one block per row finds the row's k-th best score key by radix select (8 bits
// a pass, at most four passes, each a shared-memory histogram over the keys still tied with the
// threshold), then writes the winners in page order with a block-wide scan, between the row's
// sink prefix and recent suffix. Its global reads (plan, keys, page numbers) are all issued
// before its first write, so they overlap (11 % off the select pass on an H100).
#include <climits>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/page_selection.h"

namespace vortex::cuda {
namespace {

constexpr int kPlanThreads = 1024;
constexpr int kSelectThreads = 512;
constexpr int kSelectItemsPerThread = 4;  // consecutive scores per thread in the output scan
constexpr int kSelectTile = kSelectThreads * kSelectItemsPerThread;
constexpr int kRadixBits = 8;
constexpr int kRadixBins = 1 << kRadixBits;
constexpr int kBinsPerLane = kRadixBins / 32;
// Rows with at most this many scoreable pages keep their keys in shared memory (16 KiB);
// longer rows read the scores again in every pass.
constexpr int kCachedKeys = 4096;

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

// Exclusive prefix sum of v over the block (blockDim.x a multiple of 32); *total gets the sum
// of all. `warp_totals` holds 32 values; the call ends with a barrier so it can be reused.
template <class T>
__device__ T block_exclusive_scan(T v, T* warp_totals, T* total) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  T inclusive = v;
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const T other = __shfl_up_sync(0xffffffffu, inclusive, o);
    if (lane >= o) inclusive += other;
  }
  if (lane == 31) warp_totals[warp] = inclusive;
  __syncthreads();
  if (warp == 0) {
    T t = lane < warps ? warp_totals[lane] : T(0);
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
      const T other = __shfl_up_sync(0xffffffffu, t, o);
      if (lane >= o) t += other;
    }
    if (lane < warps) warp_totals[lane] = t;
  }
  __syncthreads();
  const T before = warp > 0 ? warp_totals[warp - 1] : T(0);
  *total = warp_totals[warps - 1];
  __syncthreads();
  return before + inclusive - v;
}

__global__ void __launch_bounds__(kPlanThreads) plan_rows_kernel(PlanRowsArgs a) {
  __shared__ int32_t warp_totals[32];
  int32_t items_before = 0;  // items of the earlier tiles
  for (int32_t tile = 0; tile < a.num_rows; tile += kPlanThreads) {
    const int32_t r = tile + static_cast<int32_t>(threadIdx.x);
    DeviceRowPlan plan{0, 0, 0, 0, 0};
    if (r < a.num_rows) {
      plan = plan_row(a.policy, a.row_num_tokens[r], a.page_size);
      if (a.row_read_all != nullptr && a.row_read_all[r] != 0) plan.count = plan.k = 0;
      a.row_first[r] = plan.sink_end;
      a.row_count[r] = plan.count;
      a.row_k[r] = plan.k;
      a.row_recent_begin[r] = plan.recent_begin;
    }
    const int32_t items = (plan.count + a.chunk_pages - 1) / a.chunk_pages;
    int32_t tile_items;
    int32_t item = items_before + block_exclusive_scan(items, warp_totals, &tile_items);
    for (int32_t begin = 0; begin < plan.count; begin += a.chunk_pages, ++item) {
      a.item_row[item] = r;
      a.item_begin[item] = begin;
    }
    items_before += tile_items;
  }
  if (threadIdx.x == 0) *a.num_items = items_before;
}

// A score's bit pattern as an unsigned key in flow::ranks_before's order (a larger key ranks
// first): every NaN is 0, below -inf; -0 and +0 are one key. Integer-only, so denormals keep
// their order whatever the float mode.
__device__ __forceinline__ uint32_t score_key(uint32_t bits) {
  const uint32_t magnitude = bits & 0x7fffffffu;
  if (magnitude > 0x7f800000u) return 0u;
  if (magnitude == 0u) return 0x80000000u;
  return (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
}

__global__ void __launch_bounds__(kSelectThreads) select_pages_kernel(SelectPagesArgs a) {
  __shared__ uint32_t cached_keys[kCachedKeys];
  __shared__ int32_t histogram[kRadixBins];
  __shared__ unsigned long long warp_totals[32];
  __shared__ int32_t chosen_digit, chosen_above, chosen_count;

  // Every global read the selection needs is issued before anything is written, in two
  // dependent rounds: the row's plan, then its keys and page numbers.
  const int32_t row = static_cast<int32_t>(blockIdx.x);
  const int32_t tokens = a.row_num_tokens[row];
  const int32_t count = a.row_count[row];
  const int32_t first = a.row_first[row], k = a.row_k[row], recent_begin = a.row_recent_begin[row];
  const int32_t* dense = a.pages + a.row_page_offset[row];
  const int32_t n =
      static_cast<int32_t>((static_cast<int64_t>(tokens) + a.page_size - 1) / a.page_size);
  int32_t* out = a.out_pages + static_cast<int64_t>(row) * a.max_pages;

  if (count == 0) {  // read_all (a row without scoreable pages always reads all)
    for (int32_t i = threadIdx.x; i < n; i += kSelectThreads) out[i] = dense[i];
    if (threadIdx.x == 0) a.out_num_tokens[row] = tokens;
    return;
  }

  const uint32_t* bits =
      reinterpret_cast<const uint32_t*>(a.scores + static_cast<int64_t>(row) * a.max_pages);
  const bool cached = count <= kCachedKeys;
  if (cached) {
    for (int32_t i = threadIdx.x; i < count; i += kSelectThreads)
      cached_keys[i] = score_key(__ldg(bits + i));
  }
  // This thread's page numbers in the first output tile (read again for later tiles).
  int32_t tile0_pages[kSelectItemsPerThread];
  {
    const int32_t begin = static_cast<int32_t>(threadIdx.x) * kSelectItemsPerThread;
#pragma unroll
    for (int j = 0; j < kSelectItemsPerThread; ++j)
      tile0_pages[j] = begin + j < count ? __ldg(dense + first + begin + j) : 0;
  }
  for (int32_t p = threadIdx.x; p < first; p += kSelectThreads) out[p] = __ldg(dense + p);
  for (int32_t p = recent_begin + threadIdx.x; p < n; p += kSelectThreads)
    out[first + k + (p - recent_begin)] = __ldg(dense + p);
  if (threadIdx.x == 0) {
    // The reserved suffix always holds the last page; every other page is full.
    const int32_t selected = first + k + (n - recent_begin);
    a.out_num_tokens[row] = (selected - 1) * a.page_size + (tokens - (n - 1) * a.page_size);
  }
  if (cached) __syncthreads();
  auto key_at = [&](int32_t i) { return cached ? cached_keys[i] : score_key(__ldg(bits + i)); };

  // Radix select: the keys k with (k & mask) == prefix are the candidates still tied with the
  // k-th best key; `want` of them (the lowest indices first) are taken, with every key whose
  // masked value is above prefix. k = 0 takes nothing; a pass stops early once every
  // candidate is taken.
  uint32_t prefix = 0, mask = 0;
  int32_t want = k, candidates = count;
  for (int shift = 32 - kRadixBits; shift >= 0 && want > 0 && candidates != want;
       shift -= kRadixBits) {
    for (int b = threadIdx.x; b < kRadixBins; b += kSelectThreads) histogram[b] = 0;
    __syncthreads();
    for (int32_t i = threadIdx.x; i < count; i += kSelectThreads) {
      const uint32_t key = key_at(i);
      if ((key & mask) == prefix) atomicAdd(&histogram[(key >> shift) & (kRadixBins - 1)], 1);
    }
    __syncthreads();
    if (threadIdx.x < 32) {
      // The digit d with (candidates of higher digits) < want <= (those) + histogram[d]; lane
      // l owns digits [l * kBinsPerLane, (l + 1) * kBinsPerLane).
      const int lane = threadIdx.x;
      int32_t local = 0;
#pragma unroll
      for (int j = 0; j < kBinsPerLane; ++j) local += histogram[lane * kBinsPerLane + j];
      int32_t suffix = local;  // this lane's bins and every higher lane's
#pragma unroll
      for (int o = 1; o < 32; o <<= 1) {
        const int32_t other = __shfl_down_sync(0xffffffffu, suffix, o);
        if (lane + o < 32) suffix += other;
      }
      int32_t above = suffix - local;
      for (int j = kBinsPerLane - 1; j >= 0; --j) {
        const int d = lane * kBinsPerLane + j;
        const int32_t h = histogram[d];
        if (above < want && want <= above + h) {
          chosen_digit = d;
          chosen_above = above;
          chosen_count = h;
        }
        above += h;
      }
    }
    __syncthreads();
    prefix |= static_cast<uint32_t>(chosen_digit) << shift;
    mask |= static_cast<uint32_t>(kRadixBins - 1) << shift;
    want -= chosen_above;
    candidates = chosen_count;
  }

  // The winners in page order: page i is taken when its masked key is above prefix, or equal
  // and among the first `want` equal keys. Scan (above, equal) counts packed in 64 bits.
  int32_t above_before = 0, equal_before = 0;  // counts of the earlier tiles
  for (int32_t tile = 0; tile < count; tile += kSelectTile) {
    const int32_t begin = tile + static_cast<int32_t>(threadIdx.x) * kSelectItemsPerThread;
    uint32_t keys[kSelectItemsPerThread];
    int32_t above = 0, equal = 0;
#pragma unroll
    for (int j = 0; j < kSelectItemsPerThread; ++j) {
      keys[j] = begin + j < count ? key_at(begin + j) & mask : 0u;
      if (begin + j < count) {
        above += keys[j] > prefix;
        equal += keys[j] == prefix;
      }
    }
    unsigned long long tile_total;
    const unsigned long long before = block_exclusive_scan(
        (static_cast<unsigned long long>(above) << 32) | static_cast<uint32_t>(equal), warp_totals,
        &tile_total);
    int32_t above_run = above_before + static_cast<int32_t>(before >> 32);
    int32_t equal_run = equal_before + static_cast<int32_t>(before & 0xffffffffu);
#pragma unroll
    for (int j = 0; j < kSelectItemsPerThread; ++j) {
      if (begin + j >= count) break;
      const bool taken = keys[j] > prefix || (keys[j] == prefix && equal_run < want);
      if (taken) {
        const int32_t page = tile == 0 ? tile0_pages[j] : __ldg(dense + first + begin + j);
        out[first + above_run + (keys[j] > prefix ? min(equal_run, want) : equal_run)] = page;
      }
      if (keys[j] > prefix)
        ++above_run;
      else if (keys[j] == prefix)
        ++equal_run;
    }
    above_before += static_cast<int32_t>(tile_total >> 32);
    equal_before += static_cast<int32_t>(tile_total & 0xffffffffu);
  }
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
    select_pages_kernel<<<static_cast<unsigned>(args.num_rows), kSelectThreads, 0, stream>>>(args);
  return cudaGetLastError();
}

}  // namespace vortex::cuda
