// Shared by the CUDA end-to-end tests: the test checkpoints, the model as the GPU holds it (every
// weight rounded to bf16), and the CPU reference's greedy continuation with the margin of each
// choice, against which GPU generations are compared.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "engine/cpu/cpu_model_runner.h"
#include "engine/loaded_model.h"
#include "engine/sparse_decode.h"

namespace vortex::test {

inline std::string model_dir(const std::string& name) {
  return std::string(VORTEX_SOURCE_DIR) + "/tests/data/models/" + name;
}

inline Tensor round_to_bf16(const Tensor& t) {
  if (!t.defined() || t.dtype() == DType::kBF16) return t;
  Tensor out = Tensor::empty(DType::kBF16, t.shape());
  std::vector<float> f(static_cast<size_t>(t.numel()));
  convert_to_f32(t.dtype(), t.data(), f.data(), f.size());
  for (size_t i = 0; i < f.size(); ++i) out.data_as<uint16_t>()[i] = f32_to_bf16(f[i]);
  return out;
}

// The model as the GPU holds it: every weight rounded to bf16.
inline LoadedModel bf16_model(const std::string& name) {
  LoadedModel m = load_model(model_dir(name), {});
  ModelWeights& w = m.weights;
  w.embed_tokens = round_to_bf16(w.embed_tokens);
  w.final_norm = round_to_bf16(w.final_norm);
  w.lm_head = round_to_bf16(w.lm_head);
  for (LayerWeights& l : w.layers) {
    for (Tensor& t : l.tensors) t = round_to_bf16(t);
  }
  return m;
}

// The CPU reference, one request at a time through the CPU runner (with the flow, if any): its
// greedy tokens, the margin of each choice (top-1 − top-2 logit over the logits' standard
// deviation) and the chosen token's logprob.
struct CpuGreedy {
  std::vector<int32_t> tokens;
  std::vector<double> margins;
  std::vector<double> logprobs;
};

inline CpuGreedy cpu_greedy(const LoadedModel& m, const std::vector<int32_t>& prompt, int32_t n,
                            int32_t P = 16,
                            std::shared_ptr<const SparseAttentionConfig> sparse = nullptr) {
  const ModelConfig& c = m.config;
  const auto len = static_cast<int32_t>(prompt.size());
  const int32_t num_pages = (len + n + P) / P;
  CpuModelRunner runner(m, {c.num_layers, c.num_kv_heads, c.head_dim, P}, num_pages);
  const bool has_flow = sparse != nullptr;
  if (sparse) runner.set_flows({std::move(sparse)});
  PagePool pool(num_pages);
  Request r;
  r.prompt = prompt;
  if (has_flow) r.flow = 0;
  EXPECT_TRUE(r.blocks.reserve(pool, len + n, P));
  CpuGreedy out;
  int32_t first = 0;
  for (int32_t i = 0; i < n; ++i) {
    const std::vector<float>& logits =
        runner.forward({ScheduledWork{&r, first, r.seq_len() - first}});
    int32_t best = 0;
    double mean = 0, sq = 0;
    for (int32_t v = 0; v < c.vocab_size; ++v) {
      if (logits[v] > logits[best]) best = v;
      mean += logits[v];
    }
    mean /= c.vocab_size;
    float second = -INFINITY;
    for (int32_t v = 0; v < c.vocab_size; ++v) {
      if (v != best) second = std::max(second, logits[v]);
      sq += (logits[v] - mean) * (logits[v] - mean);
    }
    double z = 0;
    for (int32_t v = 0; v < c.vocab_size; ++v) z += std::exp(double(logits[v]) - logits[best]);
    out.tokens.push_back(best);
    out.margins.push_back((logits[best] - second) / std::sqrt(sq / c.vocab_size));
    out.logprobs.push_back(-std::log(z));
    first = r.seq_len();
    r.output.push_back(best);
  }
  return out;
}

}  // namespace vortex::test
