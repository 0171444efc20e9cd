// Recorded decode traces for the recall stage: full attention's decode of a few prompts, each
// layer's queries at every decode step and the keys and values of every token, recorded once
// (CPU runner) and replayed for any flow: the flow summarizes the pages as they fill and selects
// at each step and layer, and the recall is the share of full attention's softmax mass on the
// pages it selected (the definition of CpuSparseAttention::record_recall). Every flow is so
// judged on the same trajectory, without running the model again.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/loaded_model.h"
#include "engine/sparse_decode.h"

namespace vortex::agent {

struct TracePrompt {
  std::vector<int32_t> ids;
  int32_t max_tokens = 2;  // the first token comes from prefill, each further one is a step
};

struct DecodeTrace {
  int32_t prompt_len = 0;
  int32_t steps = 0;  // decode steps: step s's query attends to prompt_len + 1 + s tokens
  // Per layer: keys and values of the prompt_len + steps tokens, [kv_head][token][head_dim].
  std::vector<std::vector<float>> k, v;
  // Per step and layer: the query heads, [num_q_heads][head_dim] at (s * num_layers + l).
  std::vector<float> q;
  int32_t tokens() const { return prompt_len + steps; }
};

struct DecodeTraces {
  int32_t num_layers = 0, num_q_heads = 0, num_kv_heads = 0, head_dim = 0;
  std::vector<DecodeTrace> traces;
};

// Runs each prompt alone with full attention on the CPU (KV pages of `page_size` tokens, as the
// engine the recall stands for) and records its decode steps.
DecodeTraces record_decode_traces(const LoadedModel& model, const std::vector<TracePrompt>& prompts,
                                  int32_t page_size);

// Writes and reads a trace file (a header line of JSON, then the f32 arrays). read_ checks the
// header, the sizes and the geometry against `model` and throws vortex::Error naming the file
// when anything is off (a cache file is untrusted: it may be truncated or from another model).
void write_decode_traces(const DecodeTraces& traces, const std::string& path);
DecodeTraces read_decode_traces(const std::string& path, const ModelConfig& model);

// Replays the traces for `flow` (its program bound to the model's geometry and `page_size`, its
// policy): per layer, the recall of each (decode step, KV head) row in the flow's sparse layers
// (SparseStats::recall's layout; recall_summary_json summarizes it). Rows that read every page
// count as recall 1, as in the live engine.
std::vector<std::vector<float>> replay_recall(const DecodeTraces& traces,
                                              const SparseAttentionConfig& flow, int32_t page_size);

}  // namespace vortex::agent
