// A decoder architecture, described once: the tensors of its layers (roles, checkpoint names,
// shapes) and its forward pass over the backend ops of model/decoder_backend.h. The CPU and CUDA
// runners implement those ops and run whichever architecture the model has; nothing else in the
// engine branches on it. docs/architecture.md ("Adding an architecture") lists the steps.
#pragma once

#include <string>
#include <vector>

#include "model/decoder_backend.h"
#include "model/model_config.h"
#include "model/model_weights.h"

namespace vortex {

// One tensor of layer N: its checkpoint name is "model.layers.N." + suffix.
struct LayerTensorSpec {
  std::string suffix;  // "self_attn.q_proj.weight"
  Shape shape;
  WeightKind kind;
  LayerTensor role;
  // Why the config needs it, for the error when a checkpoint lacks it ("config.json has
  // attention_bias: true"); empty where every model of the architecture has it.
  std::string needed_because;
};

class Architecture {
 public:
  virtual ~Architecture() = default;
  // The tensors every layer of a model with `config` holds, in checkpoint order.
  virtual std::vector<LayerTensorSpec> layer_tensors(const ModelConfig& config) const = 0;
  // One engine step: embeds the step's tokens, runs every layer and samples.
  virtual void forward(const ModelConfig& config, DecoderBackend& backend) const = 0;
};

const Architecture& architecture_of(Arch arch);

}  // namespace vortex
