// The architecture layer: each architecture's layer tensors and the order of the backend ops its
// forward pass issues (recorded by a backend that only logs), which both runners execute.
#include "model/architecture.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/error.h"

namespace vortex {
namespace {

ModelConfig tiny(Arch arch, bool bias) {
  ModelConfig c;
  c.arch = arch;
  c.vocab_size = 96;
  c.hidden_size = 64;
  c.intermediate_size = 160;
  c.num_layers = 2;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.head_dim = 32;
  c.max_position_embeddings = 256;
  c.attention_bias = bias;
  return c;
}

// Logs every op as one short line.
class LoggingBackend final : public DecoderBackend {
 public:
  std::vector<std::string> log;
  void embed() override { log.push_back("embed"); }
  void add_rms_norm(int32_t layer, LayerTensor norm) override {
    log.push_back(str_cat("norm ", layer, " ", static_cast<int>(norm)));
  }
  void linear(int32_t layer, Projection p) override {
    log.push_back(str_cat("linear ", layer, " ", static_cast<int>(p)));
  }
  void qkv_rope_append(int32_t layer, bool qk_norm) override {
    log.push_back(str_cat("rope ", layer, qk_norm ? " qk_norm" : ""));
  }
  void flow_summarize(int32_t layer) override { log.push_back(str_cat("summarize ", layer)); }
  void attention(int32_t layer) override { log.push_back(str_cat("attention ", layer)); }
  void swiglu() override { log.push_back("swiglu"); }
  void logits() override { log.push_back("logits"); }
  void sample() override { log.push_back("sample"); }
};

std::vector<std::string> expected_ops(int layers, bool qk_norm) {
  auto norm = [](int l, LayerTensor t) { return str_cat("norm ", l, " ", static_cast<int>(t)); };
  auto lin = [](int l, Projection p) { return str_cat("linear ", l, " ", static_cast<int>(p)); };
  std::vector<std::string> ops = {"embed"};
  for (int l = 0; l < layers; ++l) {
    for (const std::string& op :
         {norm(l, LayerTensor::kInputNorm), lin(l, Projection::kQkv),
          str_cat("rope ", l, qk_norm ? " qk_norm" : ""), str_cat("summarize ", l),
          str_cat("attention ", l), lin(l, Projection::kOutput),
          norm(l, LayerTensor::kPostAttentionNorm), lin(l, Projection::kGateUp),
          std::string("swiglu"), lin(l, Projection::kDown)})
      ops.push_back(op);
  }
  ops.push_back("logits");
  ops.push_back("sample");
  return ops;
}

TEST(Architecture, Qwen3LayerNormsQueriesAndKeysAndHooksTheFlowAfterTheKvAppend) {
  const ModelConfig c = tiny(Arch::kQwen3, false);
  LoggingBackend b;
  architecture_of(c.arch).forward(c, b);
  EXPECT_EQ(b.log, expected_ops(2, true));
}

TEST(Architecture, LlamaLayerIsTheSameWithoutQkNorm) {
  const ModelConfig c = tiny(Arch::kLlama, false);
  LoggingBackend b;
  architecture_of(c.arch).forward(c, b);
  EXPECT_EQ(b.log, expected_ops(2, false));
}

bool has_role(const std::vector<LayerTensorSpec>& specs, LayerTensor role) {
  for (const LayerTensorSpec& s : specs)
    if (s.role == role) return true;
  return false;
}

TEST(Architecture, LayerTensorsFollowTheArchitectureAndTheConfig) {
  const auto qwen = architecture_of(Arch::kQwen3).layer_tensors(tiny(Arch::kQwen3, false));
  EXPECT_TRUE(has_role(qwen, LayerTensor::kQNorm));
  EXPECT_TRUE(has_role(qwen, LayerTensor::kKNorm));
  EXPECT_FALSE(has_role(qwen, LayerTensor::kQBias));
  const auto llama = architecture_of(Arch::kLlama).layer_tensors(tiny(Arch::kLlama, true));
  EXPECT_FALSE(has_role(llama, LayerTensor::kQNorm));
  EXPECT_TRUE(has_role(llama, LayerTensor::kOBias));
  // Every role at most once, with the checkpoint's name and shape.
  for (const auto* specs : {&qwen, &llama}) {
    std::vector<int> seen(static_cast<size_t>(LayerTensor::kCount), 0);
    for (const LayerTensorSpec& s : *specs) EXPECT_EQ(++seen[static_cast<size_t>(s.role)], 1);
  }
  for (const LayerTensorSpec& s : qwen) {
    if (s.role == LayerTensor::kQProj) {
      EXPECT_EQ(s.suffix, "self_attn.q_proj.weight");
      EXPECT_EQ(s.shape, (Shape{128, 64}));
    }
    if (s.role == LayerTensor::kQNorm) {
      EXPECT_EQ(s.needed_because, "Qwen3 needs QK-norm weights");
    }
  }
}

}  // namespace
}  // namespace vortex
