// Next-token selection on the GPU from f32 logits, one block per row: greedy argmax (lowest id on
// ties) or a draw after temperature, top-k, top-p and min-p (in that order, as the CPU sampler)
// or a forced token (teacher forcing), plus the log-softmax log-probability of the chosen token
// under the unscaled logits. Only the chosen token and its logprob leave the device.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace vortex::cuda {

struct SampleParams {
  float temperature = 0.0f;  // 0: greedy
  int32_t top_k = 0;         // 0: off
  float top_p = 1.0f;        // 1: off
  float min_p = 0.0f;        // 0: off
  // The draw is Philox4x32-10 of `counter` under `key`; the same key and counter give the same
  // draw whatever else is in the batch.
  uint64_t key = 0;
  uint64_t counter = 0;
  // >= 0: teacher forcing: this token is the result, with its logprob; nothing is drawn.
  int32_t forced_token = -1;
};

struct SampleResult {
  int32_t token;
  float logprob;
};

// The uniform in [0, 1) (24 bits) that sample_tokens draws for (key, counter); for tests.
float philox_uniform(uint64_t key, uint64_t counter);

// logits [rows, vocab]; params and out [rows] on the device; scratch holds rows * vocab floats.
// Filtering keeps every token whose probability reaches the cut-off, so tokens tied with the
// k-th largest all stay in top-k. The draw walks the kept tokens in id order.
cudaError_t sample_tokens(const float* logits, int64_t rows, int32_t vocab,
                          const SampleParams* params, float* scratch, SampleResult* out,
                          cudaStream_t stream);

}  // namespace vortex::cuda
