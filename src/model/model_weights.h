// The weights of a Qwen3 / Llama model: loaded as zero-copy views of a safetensors checkpoint
// (checked tensor by tensor against the config), or generated at random for benchmarks and tests.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "model/model_config.h"
#include "model/safetensors.h"

namespace vortex {

// What a tensor of a decoder layer is for. An architecture (model/architecture.h) names the
// roles it uses, with their checkpoint names and shapes; a new architecture adds its roles here.
enum class LayerTensor : uint8_t {
  kInputNorm,
  kQProj,
  kKProj,
  kVProj,
  kOProj,
  kQNorm,  // per-head RMSNorm of q and k before RoPE (QK-norm)
  kKNorm,
  kQBias,
  kKBias,
  kVBias,
  kOBias,
  kPostAttentionNorm,
  kGateProj,
  kUpProj,
  kDownProj,
  kCount
};

// The tensors of one layer by role. Linear weights are [out, in] as in PyTorch. Roles the
// architecture or config does not use stay undefined: q/k norms without QK-norm (Llama), the
// biases without attention_bias.
struct LayerWeights {
  std::array<Tensor, static_cast<size_t>(LayerTensor::kCount)> tensors;

  Tensor& operator[](LayerTensor role) { return tensors[static_cast<size_t>(role)]; }
  const Tensor& operator[](LayerTensor role) const { return tensors[static_cast<size_t>(role)]; }
};

struct ModelWeights {
  Tensor embed_tokens;  // [vocab, hidden]
  std::vector<LayerWeights> layers;
  Tensor final_norm;  // [hidden]
  Tensor lm_head;     // [vocab, hidden]; the same storage as embed_tokens when tied
};

enum class WeightKind { kMatrix, kNorm, kBias };

// One tensor the config needs, under its Hugging Face name.
struct WeightSpec {
  std::string name;  // "model.layers.3.mlp.up_proj.weight"
  Shape shape;
  WeightKind kind;
  int layer;  // -1 for embed_tokens, final norm and lm_head
};

// Every tensor a checkpoint for `config` must hold, in checkpoint order; lm_head.weight is
// listed only when the embeddings are untied.
std::vector<WeightSpec> weight_specs(const ModelConfig& config);

// Views of every tensor, checked for presence, exact shape and a float dtype (f32, bf16 or f16,
// kept as stored). Throws vortex::Error naming the file and the tensor.
ModelWeights load_model_weights(const SafetensorsArchive& archive, const ModelConfig& config);

// Deterministic random weights: matrices and biases ~ N(0, 0.02^2) (quantised to 2^16 levels,
// cut off near 4.3 sigma), norms = 1. The result depends on the seed and the
// tensor names and shapes only, not on the number of threads.
ModelWeights random_model_weights(const ModelConfig& config, uint64_t seed,
                                  DType dtype = DType::kBF16);

// The weights under their Hugging Face names (lm_head left out when tied), ready for
// write_safetensors.
std::vector<std::pair<std::string, Tensor>> named_weights(const ModelWeights& weights,
                                                          const ModelConfig& config);

}  // namespace vortex
