#include "model/architectures/llama_family.h"

namespace vortex {
namespace {

class LlamaFamily final : public Architecture {
 public:
  // qk_norm: the layer norms q and k per head before RoPE (Qwen3); `name` is for messages.
  LlamaFamily(bool qk_norm, const char* name) : qk_norm_(qk_norm), name_(name) {}

  std::vector<LayerTensorSpec> layer_tensors(const ModelConfig& c) const override {
    const int64_t hidden = c.hidden_size, inter = c.intermediate_size, q = c.q_dim(),
                  kv = c.kv_dim();
    using enum LayerTensor;
    const WeightKind norm = WeightKind::kNorm, matrix = WeightKind::kMatrix,
                     bias = WeightKind::kBias;
    std::vector<LayerTensorSpec> t = {
        {"input_layernorm.weight", {hidden}, norm, kInputNorm, ""},
        {"self_attn.q_proj.weight", {q, hidden}, matrix, kQProj, ""},
        {"self_attn.k_proj.weight", {kv, hidden}, matrix, kKProj, ""},
        {"self_attn.v_proj.weight", {kv, hidden}, matrix, kVProj, ""},
        {"self_attn.o_proj.weight", {hidden, q}, matrix, kOProj, ""},
    };
    if (c.attention_bias) {
      const std::string why = "config.json has attention_bias: true";
      t.push_back({"self_attn.q_proj.bias", {q}, bias, kQBias, why});
      t.push_back({"self_attn.k_proj.bias", {kv}, bias, kKBias, why});
      t.push_back({"self_attn.v_proj.bias", {kv}, bias, kVBias, why});
      t.push_back({"self_attn.o_proj.bias", {hidden}, bias, kOBias, why});
    }
    if (qk_norm_) {
      const std::string why = std::string(name_) + " needs QK-norm weights";
      t.push_back({"self_attn.q_norm.weight", {c.head_dim}, norm, kQNorm, why});
      t.push_back({"self_attn.k_norm.weight", {c.head_dim}, norm, kKNorm, why});
    }
    t.push_back({"post_attention_layernorm.weight", {hidden}, norm, kPostAttentionNorm, ""});
    t.push_back({"mlp.gate_proj.weight", {inter, hidden}, matrix, kGateProj, ""});
    t.push_back({"mlp.up_proj.weight", {inter, hidden}, matrix, kUpProj, ""});
    t.push_back({"mlp.down_proj.weight", {hidden, inter}, matrix, kDownProj, ""});
    return t;
  }

  void forward(const ModelConfig& c, DecoderBackend& b) const override {
    b.embed();
    for (int32_t layer = 0; layer < c.num_layers; ++layer) {
      // Attention block.
      b.add_rms_norm(layer, LayerTensor::kInputNorm);
      b.linear(layer, Projection::kQkv);
      b.qkv_rope_append(layer, qk_norm_);
      b.flow_summarize(layer);
      b.attention(layer);
      b.linear(layer, Projection::kOutput);
      // MLP block.
      b.add_rms_norm(layer, LayerTensor::kPostAttentionNorm);
      b.linear(layer, Projection::kGateUp);
      b.swiglu();
      b.linear(layer, Projection::kDown);
    }
    b.logits();
    b.sample();
  }

 private:
  bool qk_norm_;
  const char* name_;
};

}  // namespace

const Architecture& llama_architecture() {
  static const LlamaFamily arch(false, "Llama");
  return arch;
}

const Architecture& qwen3_architecture() {
  static const LlamaFamily arch(true, "Qwen3");
  return arch;
}

}  // namespace vortex
