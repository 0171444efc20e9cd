#include "model/presets.h"

#include <gtest/gtest.h>

#include "model/model_weights.h"

namespace vortex {
namespace {

int64_t parameter_count(const ModelConfig& c, bool with_embeddings) {
  int64_t n = 0;
  for (const WeightSpec& s : weight_specs(c)) {
    bool embedding = s.name == "model.embed_tokens.weight" || s.name == "lm_head.weight";
    if (with_embeddings || !embedding) n += shape_numel(s.shape);
  }
  return n;
}

TEST(Presets, NamesAreListedInAStableOrder) {
  EXPECT_EQ(preset_names(), (std::vector<std::string>{"qwen3-0.6b", "qwen3-1.7b", "qwen3-4b",
                                                      "qwen3-8b", "llama-3.1-8b"}));
}

TEST(Presets, UnknownNameGivesNothing) {
  EXPECT_FALSE(preset_config("qwen3-1.7B").has_value());  // names are exact, lower case
  EXPECT_FALSE(preset_config("").has_value());
}

TEST(Presets, Qwen3_1_7bHasThePublishedGeometry) {
  ModelConfig c = *preset_config("qwen3-1.7b");
  EXPECT_EQ(c.arch, Arch::kQwen3);
  EXPECT_EQ(c.architecture, "Qwen3ForCausalLM");
  EXPECT_EQ(c.hidden_size, 2048);
  EXPECT_EQ(c.num_layers, 28);
  EXPECT_EQ(c.num_heads, 16);
  EXPECT_EQ(c.num_kv_heads, 8);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.intermediate_size, 6144);
  EXPECT_EQ(c.vocab_size, 151936);
  EXPECT_DOUBLE_EQ(c.rope.theta, 1e6);
  EXPECT_EQ(c.rope.type, "default");
  EXPECT_DOUBLE_EQ(c.rms_norm_eps, 1e-6);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_EQ(c.dtype, DType::kBF16);
  EXPECT_EQ(c.arch, Arch::kQwen3);
  // One token of KV cache in bf16, as DESIGN.md counts it: 28 layers x 8 heads x 128 x 2 x 2 B.
  EXPECT_EQ(int64_t{c.num_layers} * c.kv_dim() * 2 * 2, 114688);
}

TEST(Presets, Llama31_8bHasThePublishedGeometry) {
  ModelConfig c = *preset_config("llama-3.1-8b");
  EXPECT_EQ(c.arch, Arch::kLlama);
  EXPECT_EQ(c.hidden_size, 4096);
  EXPECT_EQ(c.num_layers, 32);
  EXPECT_EQ(c.num_heads, 32);
  EXPECT_EQ(c.num_kv_heads, 8);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.intermediate_size, 14336);
  EXPECT_EQ(c.vocab_size, 128256);
  EXPECT_DOUBLE_EQ(c.rope.theta, 500000.0);
  EXPECT_EQ(c.rope.type, "llama3");
  EXPECT_DOUBLE_EQ(c.rope.factor, 8.0);
  EXPECT_DOUBLE_EQ(c.rope.low_freq_factor, 1.0);
  EXPECT_DOUBLE_EQ(c.rope.high_freq_factor, 4.0);
  EXPECT_EQ(c.rope.original_max_position_embeddings, 8192);
  EXPECT_EQ(c.eos_token_ids, (std::vector<int32_t>{128001, 128008, 128009}));
  EXPECT_EQ(c.bos_token_id, 128000);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_EQ(c.arch, Arch::kLlama);
}

TEST(Presets, ParameterCountsMatchThePublishedModelSizes) {
  // Non-embedding sizes from the Qwen3 model cards; Llama-3.1-8B's total is 8.03B.
  struct Expect {
    const char* name;
    double billions;
    bool with_embeddings;
  };
  for (const Expect& e : {Expect{"qwen3-0.6b", 0.44, false}, Expect{"qwen3-1.7b", 1.4, false},
                          Expect{"qwen3-4b", 3.6, false}, Expect{"qwen3-8b", 6.95, false},
                          Expect{"llama-3.1-8b", 8.03, true}}) {
    double got = parameter_count(*preset_config(e.name), e.with_embeddings) / 1e9;
    EXPECT_NEAR(got, e.billions, e.billions * 0.02) << e.name;
  }
}

TEST(Presets, OnlyTheSmallQwen3ModelsTieEmbeddings) {
  EXPECT_TRUE(preset_config("qwen3-0.6b")->tie_word_embeddings);
  EXPECT_TRUE(preset_config("qwen3-1.7b")->tie_word_embeddings);
  EXPECT_TRUE(preset_config("qwen3-4b")->tie_word_embeddings);
  EXPECT_FALSE(preset_config("qwen3-8b")->tie_word_embeddings);
}

TEST(Presets, EveryPresetSurvivesTheConfigParser) {
  for (const std::string& name : preset_names()) {
    ModelConfig c = *preset_config(name);
    EXPECT_EQ(c.num_heads % c.num_kv_heads, 0) << name;
    ModelConfig back = parse_model_config(model_config_to_json(c), name);
    EXPECT_EQ(model_config_to_json(back), model_config_to_json(c)) << name;
  }
}

}  // namespace
}  // namespace vortex
