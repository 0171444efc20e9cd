// The calling convention between the CUDA code generated for a flow (flow/codegen) and the CUDA
// runner that launches it (engine/cuda). Both sides see these structs: the host compiles this
// header, and the generator emits the same definitions (kCudaFlowAbiSource) at the top of every
// generated source, followed by static_asserts on the host's sizes and offsets, so a mismatch
// fails the NVRTC compile instead of corrupting memory.
//
// Conventions of every generated kernel:
//  - bf16 values are passed as their 16-bit patterns (uint16_t); the generated code converts
//    them itself (round to nearest even on store), so it needs no CUDA headers.
//  - A "row" is one (decode sequence s, KV head h) of the step: row = s * num_kv_heads + h. It
//    scores with the G = num_q_heads / num_kv_heads query heads h*G .. h*G+G-1 of q.
//  - Scoreable page i of a row (0 <= i < row_count[row]) is the row's page position
//    row_first[row] + i; its physical page is pages[row_page_offset[row] + row_first[row] + i].
//  - Field and State blocks are per (physical page, KV head) of the layer being run. Field
//    blocks are head-major, block (page, h) at h * num_pages + page (so a row's pages, usually
//    adjacent physical pages, are adjacent in memory), field_stride 16-bit units each, laid out
//    as CudaFlowSource::fields says; an int8 Field's scale is field_scales[block * field_scales
//    count + its slot]. State blocks are page-major, (page * num_kv_heads + h) * state_stride.
#pragma once

#include <cstddef>
#include <cstdint>

namespace vortex::flow {

// Threads per block of the generated kernels (the runner launches with exactly these).
constexpr int kCudaSummarizeThreads = 128;
constexpr int kCudaScorePageThreads = 128;  // also the number of pages in one worklist item
constexpr int kCudaScoreRowThreads = 256;
// The fused score-and-select kernel: one block per row (kernels/cuda/select_row.cuh's
// VX_SELECT_THREADS, checked by the generated code).
constexpr int kCudaScoreSelectThreads = 512;

// summarize: grid (max_items, num_kv_heads, num_layers). Block (x, h, z) with x < *num_items
// summarizes KV head h of physical page items[x] (a full page) in layer
// l = layers ? layers[z] : z: reads K and V [P, D] of that layer and writes the flow's Fields
// to the block fields + l * field_layer_stride + (h * num_pages + page) * field_stride and the
// scales of its int8 Fields to field_scales + l * scale_layer_stride. Blocks with
// x >= *num_items return at once (so a CUDA graph can launch a fixed grid). One launch can so
// summarize the step's pages for every sparse layer; a one-layer launch passes the layer's own
// k, v and fields with num_layers 1 (the defaults of the layer fields).
struct CudaSummarizeArgs {
  const uint16_t* k = nullptr;    // layer 0's K cache (layer l at + l * kv_layer_stride): element
  const uint16_t* v = nullptr;    // (page, head, slot, d) at page * page_stride + head *
                                  // head_stride + slot * D + d
  uint16_t* fields = nullptr;     // layer 0's Field blocks (layer l at + l * field_layer_stride)
  float* field_scales = nullptr;  // layer 0's int8 scales (layer l at + l * scale_layer_stride)
  const int32_t* items = nullptr;
  const int32_t* num_items = nullptr;  // device scalar
  const int32_t* layers = nullptr;     // [num_layers]: layer of grid z (nullptr: layer z)
  int64_t page_stride = 0;             // elements
  int64_t head_stride = 0;             // elements
  int64_t kv_layer_stride = 0;         // elements between layers of k and of v
  int64_t field_layer_stride = 0;      // elements between layers of fields
  int64_t scale_layer_stride = 0;      // floats between layers of field_scales
  int32_t num_kv_heads = 0;
  int32_t field_stride = 0;  // 16-bit units per (page, head) block
  int32_t num_layers = 1;    // grid z
  int32_t num_pages = 0;     // physical pages of the pool (Field blocks per KV head)
};

// score: the flow's score function, as one or more kernels launched in order (the generator
// lists them). A per-page kernel runs over a worklist: block b takes items b, b + gridDim.x, ...
// below *num_items; item j covers the row item_row[j]'s scoreable pages
// [item_begin[j], min(item_begin[j] + kCudaScorePageThreads, row_count[row])). A per-row kernel
// runs one block per row (grid = num_rows); rows with row_count 0 return at once.
// Kernels write the row's scores to scores[row * max_pages + i], update State in place, and pass
// values between kernels through page_scratch ([rows][max_pages][page_scratch_floats]) and
// row_scratch ([rows][row_scratch_floats]).
// A flow whose score is one per-page kernel also gets a fused score-and-select kernel
// (CudaFlowSource::select_kernel): one block of kCudaScoreSelectThreads per row (grid =
// num_rows) scores the row's pages and then selects them as kernels/cuda/page_selection.h's
// select_pages does, reading the plan (row_first, row_count, row_k, row_recent_begin,
// row_num_tokens) and writing scores, out_pages and out_num_tokens; it ignores the worklist.
struct CudaScoreArgs {
  const uint16_t* q = nullptr;               // [tokens, num_q_heads, D], after QK-norm and RoPE
  const int32_t* q_rows = nullptr;           // [sequences]: token row of each sequence's query
  const int32_t* row_page_offset = nullptr;  // [rows]
  const int32_t* pages = nullptr;            // physical pages, indexed via row_page_offset
  const int32_t* row_first = nullptr;        // [rows]: page position of scoreable page 0
  const int32_t* row_count = nullptr;        // [rows]: N, scoreable pages (0: not scored)
  const int32_t* item_row = nullptr;         // worklist (per-page kernels)
  const int32_t* item_begin = nullptr;
  const int32_t* num_items = nullptr;   // device scalar
  const uint16_t* fields = nullptr;     // this layer's Field blocks (as written by summarize)
  const float* field_scales = nullptr;  // this layer's int8 scales
  float* state = nullptr;               // this layer's State blocks: (page * num_kv_heads + h) *
                                        // state_stride, f32, the flow's States in declaration order
  float* page_scratch = nullptr;
  float* row_scratch = nullptr;
  float* scores = nullptr;  // [rows][max_pages]
  // Every score kernel reads the row's tokens (a flow's num_pages()); the fused
  // score-and-select kernel reads them and the rest of the plan and writes the outputs
  // (cuda::SelectPagesArgs' fields).
  const int32_t* row_num_tokens = nullptr;    // [rows]
  const int32_t* row_k = nullptr;             // [rows]
  const int32_t* row_recent_begin = nullptr;  // [rows]
  int32_t* out_pages = nullptr;               // [rows][max_pages]
  int32_t* out_num_tokens = nullptr;          // [rows]
  int32_t num_rows = 0;
  int32_t num_q_heads = 0;
  int32_t num_kv_heads = 0;
  int32_t max_pages = 0;
  int32_t field_stride = 0;
  int32_t state_stride = 0;
  int32_t num_pages = 0;  // physical pages of the pool (Field blocks per KV head)
  int32_t page_size = 0;  // tokens per page (fused score-and-select kernel)
};

// The same definitions as CUDA source text, for the generated code (kept equal to the structs
// above; the generator adds static_asserts with the host's offsetof values).
inline constexpr const char* kCudaFlowAbiSource = R"(
typedef unsigned short vx_bf16;
typedef int vx_i32;
typedef long long vx_i64;
struct CudaSummarizeArgs {
  const vx_bf16* k;
  const vx_bf16* v;
  vx_bf16* fields;
  float* field_scales;
  const vx_i32* items;
  const vx_i32* num_items;
  const vx_i32* layers;
  vx_i64 page_stride;
  vx_i64 head_stride;
  vx_i64 kv_layer_stride;
  vx_i64 field_layer_stride;
  vx_i64 scale_layer_stride;
  vx_i32 num_kv_heads;
  vx_i32 field_stride;
  vx_i32 num_layers;
  vx_i32 num_pages;
};
struct CudaScoreArgs {
  const vx_bf16* q;
  const vx_i32* q_rows;
  const vx_i32* row_page_offset;
  const vx_i32* pages;
  const vx_i32* row_first;
  const vx_i32* row_count;
  const vx_i32* item_row;
  const vx_i32* item_begin;
  const vx_i32* num_items;
  const vx_bf16* fields;
  const float* field_scales;
  float* state;
  float* page_scratch;
  float* row_scratch;
  float* scores;
  const vx_i32* row_num_tokens;
  const vx_i32* row_k;
  const vx_i32* row_recent_begin;
  vx_i32* out_pages;
  vx_i32* out_num_tokens;
  vx_i32 num_rows;
  vx_i32 num_q_heads;
  vx_i32 num_kv_heads;
  vx_i32 max_pages;
  vx_i32 field_stride;
  vx_i32 state_stride;
  vx_i32 num_pages;
  vx_i32 page_size;
};
)";

}  // namespace vortex::flow
