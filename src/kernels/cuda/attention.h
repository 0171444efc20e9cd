// Paged attention on the GPU over the bf16 page-major KV cache ([page][kv_head][slot][D] per
// layer, the layout of kv/kv_cache.h): decode (one query token per sequence, split-KV) and
// prefill (many query tokens per sequence, causal, tensor cores). Queries and outputs are
// [T, Hq, D] bf16; accumulation is f32; head h reads KV head h / (Hq / Hkv).
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "kernels/cuda/types.h"

namespace vortex::cuda {

struct DevicePagedKv {
  const bf16_t* k = nullptr;
  const bf16_t* v = nullptr;
  int32_t page_size = 0, num_kv_heads = 0, head_dim = 0;
  int64_t page_stride = 0, head_stride = 0;  // elements
};

// Decode: a row is one (sequence, KV head) pair and reads its own page list, so a sparse
// selection only changes the lists. Row s * Hkv + h attends over row_num_tokens[row] tokens
// held in pages[row_page_offset[row] + 0, 1, ...] in order, every page full but the last.
// Each block handles all G query heads of its row for one of num_splits chunks of the tokens;
// a second kernel merges the chunks.
// The decode kernel: tensor-core (mma) tiles with 3 or 4 pipeline stages (head_dim <= 128 and
// up to 16 query heads per KV head), or the scalar split kernel (the older variant, kept for
// comparisons and used for larger shapes).
enum class DecodeKernel : int32_t { kMma3, kMma4, kScalar };

struct DecodeAttentionArgs {
  const bf16_t* q = nullptr;
  bf16_t* out = nullptr;
  const int32_t* q_rows = nullptr;  // [num_seqs]: token row of each sequence's query in q/out
  const int32_t* row_page_offset = nullptr;  // [num_seqs * Hkv]
  const int32_t* row_num_tokens = nullptr;   // [num_seqs * Hkv], each >= 1
  const int32_t* pages = nullptr;
  int32_t num_seqs = 0, num_q_heads = 0, num_splits = 1;
  float scale = 1.0f;
  float* workspace = nullptr;  // decode_attention_workspace_bytes()
  DecodeKernel kernel = DecodeKernel::kMma3;
};

// A good number of splits for num_rows rows on this GPU (fills the machine in whole waves),
// at most enough for splits of 32 tokens of max_row_tokens, with `kernel`'s occupancy.
int decode_attention_num_splits(int64_t num_rows, int64_t max_row_tokens, int head_dim,
                                int group_size, DecodeKernel kernel = DecodeKernel::kMma3);
size_t decode_attention_workspace_bytes(int64_t num_seqs, int num_q_heads, int head_dim,
                                        int num_splits);
// head_dim a multiple of 8, at most 256; group size Hq / Hkv at most 16 (at most 8 when
// head_dim > 128). Tensor cores compute the scores and the weighted sum when head_dim <= 128.
cudaError_t decode_attention(const DecodeAttentionArgs& args, const DevicePagedKv& kv,
                             cudaStream_t stream);

// Prefill: sequence s has queries at token rows seq_q_begin[s] + [0, seq_q_len[s]), at positions
// seq_kv_len[s] - seq_q_len[s] ..., and attends causally over its first seq_kv_len[s] tokens in
// pages[seq_page_offset[s] + 0, 1, ...]. Work comes in blocks of
// prefill_attention_block_tokens(G) query tokens: block b covers sequence block_seq[b] from its
// query block_q_start[b]. Blocks are run in the order given (put the longest first).
struct PrefillAttentionArgs {
  const bf16_t* q = nullptr;
  bf16_t* out = nullptr;
  const int32_t* block_seq = nullptr;
  const int32_t* block_q_start = nullptr;
  const int32_t* seq_q_begin = nullptr;
  const int32_t* seq_q_len = nullptr;
  const int32_t* seq_kv_len = nullptr;
  const int32_t* seq_page_offset = nullptr;
  const int32_t* pages = nullptr;
  int32_t num_blocks = 0, num_q_heads = 0;
  float scale = 1.0f;
};

int prefill_attention_block_tokens(int group_size);
// head_dim a multiple of 8, at most 128; group size at most 64.
cudaError_t prefill_attention(const PrefillAttentionArgs& args, const DevicePagedKv& kv,
                              cudaStream_t stream);

}  // namespace vortex::cuda
