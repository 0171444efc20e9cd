// The operations a decoder architecture is written in (model/architecture.h). A backend (the
// CPU runner's, the CUDA runner's) implements them over its own kernels, weights and buffers;
// an architecture's forward pass calls them in order, once per engine step, and never sees a
// device. The CUDA backend enqueues each op on its stream, so one call of the forward pass is
// what its CUDA graphs capture.
//
// A step is a flat batch of T tokens (prefill chunks and decode tokens of several requests); the
// backend holds the step's inputs (token ids, positions, the KV slots they write, each
// sequence's pages, the rows that sample) and these activations, which the ops read and write:
//
//   x      [T, hidden]          the residual stream
//   h      [T, hidden]          the normed input of the next projection
//   qkv    [T, (Hq + 2 Hkv) D]  the attention projections (q, k and v)
//   attn   [T, Hq D]            attention's output
//   delta  [T, hidden]          a block's output, added to x by the next add_rms_norm
//   gate_up, act                the MLP's hidden activations
//   logits [rows that sample, vocab]
//
// Weights are named by layer and LayerTensor role; each backend prepares them for its kernels
// (the CUDA backend fuses q|k|v and gate|up into one matrix each).
#pragma once

#include <cstdint>

#include "model/model_weights.h"

namespace vortex {

// The projections of a layer, with the activations each reads and writes.
enum class Projection : uint8_t {
  kQkv,     // qkv = h · [Wq | Wk | Wv]ᵀ (+ the q, k, v biases)
  kOutput,  // delta = attn · Woᵀ (+ the o bias)
  kGateUp,  // gate_up = h · [Wgate | Wup]ᵀ
  kDown,    // delta = act · Wdownᵀ
};

class DecoderBackend {
 public:
  virtual ~DecoderBackend() = default;

  // x = the embedding rows of the step's tokens; nothing is pending in delta.
  virtual void embed() = 0;
  // x += delta (the previous block's output, if any is pending); h = rms_norm(x) · weight, the
  // weight being `norm` of `layer`.
  virtual void add_rms_norm(int32_t layer, LayerTensor norm) = 0;
  virtual void linear(int32_t layer, Projection projection) = 0;
  // Per-head RMSNorm of q and k when qk_norm (kQNorm, kKNorm), rotary embedding of q and k at the
  // tokens' positions, and the step's k and v written into their KV cache slots.
  virtual void qkv_rope_append(int32_t layer, bool qk_norm) = 0;
  // Where a flow hooks in, after the KV append: pages this step filled get each flow's page
  // Fields (its summarize method). A no-op with dense attention.
  virtual void flow_summarize(int32_t layer) = 0;
  // attn = softmax(q kᵀ / sqrt(D)) v over each sequence's cached tokens (causal within a
  // prefill chunk), with grouped KV heads. A decode row under a flow reads only the pages the
  // flow selects for it (its score and select methods run first); every other row is dense.
  virtual void attention(int32_t layer) = 0;
  // act = silu(gate) · up, from gate_up.
  virtual void swiglu() = 0;
  // After the last layer, for the rows that sample only: x += delta, the final norm, lm_head.
  virtual void logits() = 0;
  // One token per sampling row from the logits (the backend holds each row's parameters).
  virtual void sample() = 0;
};

}  // namespace vortex
