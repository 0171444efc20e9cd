#include "model/presets.h"

namespace vortex {
namespace {

struct Preset {
  std::string_view name;
  ModelConfig (*make)();
};

// Qwen3 dense models share vocabulary, head_dim, RoPE and token ids; they differ in width, depth
// and tying (numbers from the published Hugging Face config.json files).
ModelConfig qwen3(int32_t hidden, int32_t intermediate, int32_t layers, int32_t heads, bool tied) {
  ModelConfig c;
  c.arch = Arch::kQwen3;
  c.architecture = "Qwen3ForCausalLM";
  c.vocab_size = 151936;
  c.hidden_size = hidden;
  c.intermediate_size = intermediate;
  c.num_layers = layers;
  c.num_heads = heads;
  c.num_kv_heads = 8;
  c.head_dim = 128;
  c.rms_norm_eps = 1e-6;
  c.rope.theta = 1000000.0;
  c.rope.type = "default";
  c.max_position_embeddings = 40960;
  c.tie_word_embeddings = tied;
  c.dtype = DType::kBF16;
  c.bos_token_id = 151643;
  c.eos_token_ids = {151645, 151643};  // <|im_end|>, then <|endoftext|> from generation_config
  return c;
}

ModelConfig llama_3_1_8b() {
  ModelConfig c;
  c.arch = Arch::kLlama;
  c.architecture = "LlamaForCausalLM";
  c.vocab_size = 128256;
  c.hidden_size = 4096;
  c.intermediate_size = 14336;
  c.num_layers = 32;
  c.num_heads = 32;
  c.num_kv_heads = 8;
  c.head_dim = 128;
  c.rms_norm_eps = 1e-5;
  c.rope.theta = 500000.0;
  c.rope.type = "llama3";
  c.rope.factor = 8.0;
  c.rope.low_freq_factor = 1.0;
  c.rope.high_freq_factor = 4.0;
  c.rope.original_max_position_embeddings = 8192;
  c.max_position_embeddings = 131072;
  c.tie_word_embeddings = false;
  c.dtype = DType::kBF16;
  c.bos_token_id = 128000;
  c.eos_token_ids = {128001, 128008, 128009};
  return c;
}

constexpr Preset kPresets[] = {
    {"qwen3-0.6b", [] { return qwen3(1024, 3072, 28, 16, true); }},
    {"qwen3-1.7b", [] { return qwen3(2048, 6144, 28, 16, true); }},
    {"qwen3-4b", [] { return qwen3(2560, 9728, 36, 32, true); }},
    {"qwen3-8b", [] { return qwen3(4096, 12288, 36, 32, false); }},
    {"llama-3.1-8b", llama_3_1_8b},
};

}  // namespace

std::optional<ModelConfig> preset_config(std::string_view name) {
  for (const Preset& p : kPresets) {
    if (p.name == name) return p.make();
  }
  return std::nullopt;
}

std::vector<std::string> preset_names() {
  std::vector<std::string> names;
  for (const Preset& p : kPresets) names.emplace_back(p.name);
  return names;
}

}  // namespace vortex
