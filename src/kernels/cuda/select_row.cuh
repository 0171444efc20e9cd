// One row's top-k page selection by one thread block: the device code shared by the standalone
// select kernel (page_selection.cu, compiled by nvcc) and the fused score-and-select kernels
// that the flow code generator emits (compiled by NVRTC: the build embeds this file's text in
// the generator, so it uses no headers, no namespaces and no fixed-width typedefs).
//
// A row's selection, in flow::select_pages' order (higher score first, equal scores to the
// lower page, NaN last):
//  1. vx_select_row_plan: the row's plan from plan_rows (one round of global reads).
//  2. vx_select_row_begin: a skipped row (k < 0: another flow's, page_selection.h's kRowSkip)
//     is left alone, and a row that reads all its pages gets a copy of its dense list (and the
//     function returns false: the row is done). Otherwise the row's scoreable pages' physical
//     numbers are cached in shared memory, its reserved sink and recent pages and its token
//     count are written, and it returns true.
//  3. The caller puts the score keys (vx_score_key) of the scoreable pages in keys[] (rows of at
//     most VX_SELECT_CACHED scoreable pages; longer rows are read from the scores in global
//     memory) and synchronizes the block.
//  4. vx_select_row_finish: radix select of the k-th best key (8 bits a pass, at most four
//     passes, each a shared-memory histogram over the keys still tied with the threshold), then
//     the winners written in page order with a block-wide scan, between the sink prefix and the
//     recent suffix.
// Every function is called by all VX_SELECT_THREADS threads of the block.
#pragma once

#define VX_SELECT_THREADS 512
#define VX_SELECT_CACHED \
  4096                     // scoreable pages of a row whose keys and pages stay in shared memory
#define VX_SELECT_ITEMS 4  // consecutive pages a thread handles in the output scan
#define VX_SELECT_RADIX_BITS 8

struct VxSelectShared {
  unsigned keys[VX_SELECT_CACHED];
  int pages[VX_SELECT_CACHED];
  int histogram[1 << VX_SELECT_RADIX_BITS];
  unsigned long long warp_totals[32];
  int chosen_digit, chosen_above, chosen_count;
};

// plan_rows' plan of a row, and where its lists are.
struct VxSelectRow {
  int tokens;        // tokens of the row
  int n;             // its pages
  int first;         // page position of scoreable page 0 (the sink pages end there)
  int count;         // scoreable pages (0: the row reads all its pages)
  int k;             // scoreable pages to take (-1: a skipped row)
  int recent_begin;  // page position where the reserved recent pages start
  const int* dense;  // the row's dense page list
  int* out;          // the row's selected page list
};

// A score's bit pattern as an unsigned key in flow::ranks_before's order (a larger key ranks
// first): every NaN is 0, below -inf; -0 and +0 are one key. Integer-only, so denormals keep
// their order whatever the float mode.
__device__ __forceinline__ unsigned vx_score_key(unsigned bits) {
  const unsigned magnitude = bits & 0x7fffffffu;
  if (magnitude > 0x7f800000u) return 0u;
  if (magnitude == 0u) return 0x80000000u;
  return (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
}

// Exclusive prefix sum of v over the block (blockDim.x a multiple of 32); *total gets the sum
// of all. `warp_totals` holds 32 values; the call ends with a barrier so it can be reused.
template <class T>
__device__ T vx_block_exclusive_scan(T v, T* warp_totals, T* total) {
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

__device__ __forceinline__ VxSelectRow vx_select_row_plan(
    int row, int page_size, int max_pages, const int* row_page_offset, const int* pages,
    const int* row_num_tokens, const int* row_first, const int* row_count, const int* row_k,
    const int* row_recent_begin, int* out_pages) {
  VxSelectRow r;
  r.tokens = row_num_tokens[row];
  r.count = row_count[row];
  r.first = row_first[row];
  r.k = row_k[row];
  r.recent_begin = row_recent_begin[row];
  r.dense = pages + row_page_offset[row];
  r.n = (int)(((long long)r.tokens + page_size - 1) / page_size);
  r.out = out_pages + (long long)row * max_pages;
  return r;
}

// Step 2 above. out_num_tokens: the row's entry.
__device__ __forceinline__ bool vx_select_row_begin(const VxSelectRow& r, VxSelectShared& s,
                                                    int page_size, int* out_num_tokens) {
  if (r.k < 0) return false;  // not this flow's row: written by another
  if (r.count == 0) {         // read_all (a row without scoreable pages always reads all)
    for (int i = threadIdx.x; i < r.n; i += VX_SELECT_THREADS) r.out[i] = r.dense[i];
    if (threadIdx.x == 0) *out_num_tokens = r.tokens;
    return false;
  }
  const int cached = min(r.count, VX_SELECT_CACHED);
  for (int i = threadIdx.x; i < cached; i += VX_SELECT_THREADS)
    s.pages[i] = __ldg(r.dense + r.first + i);
  for (int p = threadIdx.x; p < r.first; p += VX_SELECT_THREADS) r.out[p] = __ldg(r.dense + p);
  for (int p = r.recent_begin + threadIdx.x; p < r.n; p += VX_SELECT_THREADS)
    r.out[r.first + r.k + (p - r.recent_begin)] = __ldg(r.dense + p);
  if (threadIdx.x == 0) {
    // The reserved suffix always holds the last page; every other page is full.
    const int selected = r.first + r.k + (r.n - r.recent_begin);
    *out_num_tokens = (selected - 1) * page_size + (r.tokens - (r.n - 1) * page_size);
  }
  return true;
}

// The physical page of scoreable page i (after vx_select_row_begin and a barrier).
__device__ __forceinline__ int vx_select_row_page(const VxSelectRow& r, const VxSelectShared& s,
                                                  int i) {
  return i < VX_SELECT_CACHED ? s.pages[i] : __ldg(r.dense + r.first + i);
}

// Step 4 above. scores: the row's scores (read for rows longer than VX_SELECT_CACHED; plain
// loads, as the caller may have written them in the same kernel).
__device__ __forceinline__ void vx_select_row_finish(const VxSelectRow& r, VxSelectShared& s,
                                                     const float* scores) {
  const int bins = 1 << VX_SELECT_RADIX_BITS, bins_per_lane = bins / 32;
  const int count = r.count;
  const bool cached = count <= VX_SELECT_CACHED;
  const unsigned* bits = (const unsigned*)scores;
  auto key_at = [&](int i) { return cached ? s.keys[i] : vx_score_key(bits[i]); };

  // Radix select: the keys k with (k & mask) == prefix are the candidates still tied with the
  // k-th best key; `want` of them (the lowest indices first) are taken, with every key whose
  // masked value is above prefix. k = 0 takes nothing; a pass stops early once every
  // candidate is taken.
  unsigned prefix = 0, mask = 0;
  int want = r.k, candidates = count;
  for (int shift = 32 - VX_SELECT_RADIX_BITS; shift >= 0 && want > 0 && candidates != want;
       shift -= VX_SELECT_RADIX_BITS) {
    for (int b = threadIdx.x; b < bins; b += VX_SELECT_THREADS) s.histogram[b] = 0;
    __syncthreads();
    for (int i = threadIdx.x; i < count; i += VX_SELECT_THREADS) {
      const unsigned key = key_at(i);
      if ((key & mask) == prefix) atomicAdd(&s.histogram[(key >> shift) & (bins - 1)], 1);
    }
    __syncthreads();
    if (threadIdx.x < 32) {
      // The digit d with (candidates of higher digits) < want <= (those) + histogram[d]; lane
      // l owns digits [l * bins_per_lane, (l + 1) * bins_per_lane).
      const int lane = threadIdx.x;
      int local = 0;
#pragma unroll
      for (int j = 0; j < bins_per_lane; ++j) local += s.histogram[lane * bins_per_lane + j];
      int suffix = local;  // this lane's bins and every higher lane's
#pragma unroll
      for (int o = 1; o < 32; o <<= 1) {
        const int other = __shfl_down_sync(0xffffffffu, suffix, o);
        if (lane + o < 32) suffix += other;
      }
      int above = suffix - local;
      for (int j = bins_per_lane - 1; j >= 0; --j) {
        const int d = lane * bins_per_lane + j;
        const int h = s.histogram[d];
        if (above < want && want <= above + h) {
          s.chosen_digit = d;
          s.chosen_above = above;
          s.chosen_count = h;
        }
        above += h;
      }
    }
    __syncthreads();
    prefix |= (unsigned)s.chosen_digit << shift;
    mask |= (unsigned)(bins - 1) << shift;
    want -= s.chosen_above;
    candidates = s.chosen_count;
  }

  // The winners in page order: page i is taken when its masked key is above prefix, or equal
  // and among the first `want` equal keys. Scan (above, equal) counts packed in 64 bits.
  const int tile_pages = VX_SELECT_THREADS * VX_SELECT_ITEMS;
  int above_before = 0, equal_before = 0;  // counts of the earlier tiles
  for (int tile = 0; tile < count; tile += tile_pages) {
    const int begin = tile + (int)threadIdx.x * VX_SELECT_ITEMS;
    unsigned keys[VX_SELECT_ITEMS];
    int above = 0, equal = 0;
#pragma unroll
    for (int j = 0; j < VX_SELECT_ITEMS; ++j) {
      keys[j] = begin + j < count ? key_at(begin + j) & mask : 0u;
      if (begin + j < count) {
        above += keys[j] > prefix;
        equal += keys[j] == prefix;
      }
    }
    unsigned long long tile_total;
    const unsigned long long before = vx_block_exclusive_scan(
        ((unsigned long long)above << 32) | (unsigned)equal, s.warp_totals, &tile_total);
    int above_run = above_before + (int)(before >> 32);
    int equal_run = equal_before + (int)(before & 0xffffffffu);
#pragma unroll
    for (int j = 0; j < VX_SELECT_ITEMS; ++j) {
      if (begin + j >= count) break;
      const bool taken = keys[j] > prefix || (keys[j] == prefix && equal_run < want);
      if (taken) {
        const int page = vx_select_row_page(r, s, begin + j);
        r.out[r.first + above_run + (keys[j] > prefix ? min(equal_run, want) : equal_run)] = page;
      }
      if (keys[j] > prefix)
        ++above_run;
      else if (keys[j] == prefix)
        ++equal_run;
    }
    above_before += (int)(tile_total >> 32);
    equal_before += (int)(tile_total & 0xffffffffu);
  }
}
