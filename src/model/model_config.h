// The geometry and settings of a dense decoder-only model, read from a Hugging Face
// `config.json` as written by transformers 4.x or 5.x (Qwen3 and Llama families).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/dtype.h"
#include "core/json_file.h"
#include "core/rope_scaling.h"

namespace vortex {

enum class Arch { kQwen3, kLlama };

// Upper bounds on config.json values, several times what released models use (e.g. vocab 262,144,
// hidden 16,384, 126 layers, 128 heads, head_dim 256, 10M positions). Together they keep every
// size the engine derives in range: q_dim and kv_dim fit int32 and weight element counts
// (vocab * hidden, intermediate * hidden) fit int64 many times over.
inline constexpr int32_t kMaxVocabSize = 1 << 20;
inline constexpr int32_t kMaxHiddenSize = 1 << 16;
inline constexpr int32_t kMaxIntermediateSize = 1 << 18;
inline constexpr int32_t kMaxLayers = 1024;
inline constexpr int32_t kMaxHeads = 1024;
inline constexpr int32_t kMaxHeadDim = 1024;
inline constexpr int32_t kMaxAttentionDim = 1 << 16;  // num_attention_heads * head_dim
inline constexpr int32_t kMaxPositionEmbeddings = 1 << 24;
inline constexpr size_t kMaxEosTokenIds = 1024;  // eos_token_id lists (3 for Llama-3.1)
// Floats must be finite, positive and at most these.
inline constexpr double kMaxRopeTheta = 1e12;
inline constexpr double kMaxRopeFactor = 1e6;  // rope scaling factor, low/high_freq_factor
inline constexpr double kMaxRmsNormEps = 1.0;

std::string_view arch_name(Arch arch);  // "qwen3", "llama"

struct ModelConfig {
  Arch arch = Arch::kQwen3;
  std::string architecture;  // HF class name, e.g. "Qwen3ForCausalLM"
  int32_t vocab_size = 0;
  int32_t hidden_size = 0;
  int32_t intermediate_size = 0;
  int32_t num_layers = 0;
  int32_t num_heads = 0;
  int32_t num_kv_heads = 0;
  int32_t head_dim = 0;
  double rms_norm_eps = 1e-6;
  RopeParams rope;
  int32_t max_position_embeddings = 0;
  bool tie_word_embeddings = false;
  bool attention_bias = false;  // q/k/v/o projections carry biases
  DType dtype = DType::kBF16;   // torch_dtype / dtype of the checkpoint
  std::optional<int32_t> bos_token_id;
  std::vector<int32_t> eos_token_ids;

  int32_t group_size() const { return num_heads / num_kv_heads; }
  int32_t q_dim() const { return num_heads * head_dim; }
  int32_t kv_dim() const { return num_kv_heads * head_dim; }
};

// Builds a config from parsed config.json text and validates every field; `path` names the file
// in errors ("PATH: field 'num_attention_heads' ..."). Throws vortex::Error on anything missing,
// ill-typed, out of range (the limits above; NaN, infinite or negative floats) or unsupported
// (architecture, rope type, sliding window, ...).
ModelConfig parse_model_config(const Json& j, const std::string& path);

// Reads DIR/config.json and, if present, DIR/generation_config.json, whose eos_token_id (int or
// list) comes first in eos_token_ids, followed by config.json's ids that it does not repeat.
ModelConfig load_model_config(const std::string& dir);

// The config as a transformers-4.x style config.json object (parse_model_config reads it back
// to an equal config); used to write checkpoints for presets and trained models.
Json model_config_to_json(const ModelConfig& config);

}  // namespace vortex
