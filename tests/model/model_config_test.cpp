#include "model/model_config.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cmath>
#include <filesystem>
#include <limits>

#include "model/model_weights.h"
#include "model/test_files.h"

namespace vortex {
namespace {

using testing::contains;
using testing::error_of;

// Qwen3-0.6B's config.json as published (transformers 4.51).
constexpr const char* kQwen3Transformers4 = R"({
  "architectures": ["Qwen3ForCausalLM"],
  "attention_bias": false,
  "attention_dropout": 0.0,
  "bos_token_id": 151643,
  "eos_token_id": 151645,
  "head_dim": 128,
  "hidden_act": "silu",
  "hidden_size": 1024,
  "initializer_range": 0.02,
  "intermediate_size": 3072,
  "max_position_embeddings": 40960,
  "max_window_layers": 28,
  "model_type": "qwen3",
  "num_attention_heads": 16,
  "num_hidden_layers": 28,
  "num_key_value_heads": 8,
  "rms_norm_eps": 1e-06,
  "rope_scaling": null,
  "rope_theta": 1000000,
  "sliding_window": null,
  "tie_word_embeddings": true,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.51.0",
  "use_cache": true,
  "use_sliding_window": false,
  "vocab_size": 151936
})";

// The same model saved by transformers 5: `dtype`, `rope_parameters`, `layer_types`.
constexpr const char* kQwen3Transformers5 = R"({
  "architectures": ["Qwen3ForCausalLM"],
  "attention_bias": false,
  "attention_dropout": 0.0,
  "bos_token_id": 151643,
  "dtype": "bfloat16",
  "eos_token_id": 151645,
  "head_dim": 128,
  "hidden_act": "silu",
  "hidden_size": 1024,
  "initializer_range": 0.02,
  "intermediate_size": 3072,
  "layer_types": ["full_attention", "full_attention", "full_attention"],
  "max_position_embeddings": 40960,
  "max_window_layers": 28,
  "model_type": "qwen3",
  "num_attention_heads": 16,
  "num_hidden_layers": 28,
  "num_key_value_heads": 8,
  "pad_token_id": null,
  "rms_norm_eps": 1e-06,
  "rope_parameters": {"rope_theta": 1000000, "rope_type": "default"},
  "sliding_window": null,
  "tie_word_embeddings": true,
  "transformers_version": "5.0.0",
  "use_cache": true,
  "use_sliding_window": false,
  "vocab_size": 151936
})";

// Llama-3.1-8B-Instruct's config.json as published (transformers 4.42).
constexpr const char* kLlamaTransformers4 = R"({
  "architectures": ["LlamaForCausalLM"],
  "attention_bias": false,
  "attention_dropout": 0.0,
  "bos_token_id": 128000,
  "eos_token_id": [128001, 128008, 128009],
  "hidden_act": "silu",
  "hidden_size": 4096,
  "initializer_range": 0.02,
  "intermediate_size": 14336,
  "max_position_embeddings": 131072,
  "mlp_bias": false,
  "model_type": "llama",
  "num_attention_heads": 32,
  "num_hidden_layers": 32,
  "num_key_value_heads": 8,
  "pretraining_tp": 1,
  "rms_norm_eps": 1e-05,
  "rope_scaling": {
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 8192,
    "rope_type": "llama3"
  },
  "rope_theta": 500000.0,
  "tie_word_embeddings": false,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.42.3",
  "use_cache": true,
  "vocab_size": 128256
})";

constexpr const char* kLlamaTransformers5 = R"({
  "architectures": ["LlamaForCausalLM"],
  "attention_bias": false,
  "bos_token_id": 128000,
  "dtype": "bfloat16",
  "eos_token_id": [128001, 128008, 128009],
  "head_dim": 128,
  "hidden_act": "silu",
  "hidden_size": 4096,
  "intermediate_size": 14336,
  "max_position_embeddings": 131072,
  "mlp_bias": false,
  "model_type": "llama",
  "num_attention_heads": 32,
  "num_hidden_layers": 32,
  "num_key_value_heads": 8,
  "rms_norm_eps": 1e-05,
  "rope_parameters": {
    "factor": 8.0,
    "high_freq_factor": 4.0,
    "low_freq_factor": 1.0,
    "original_max_position_embeddings": 8192,
    "rope_theta": 500000.0,
    "rope_type": "llama3"
  },
  "tie_word_embeddings": false,
  "transformers_version": "5.0.0",
  "vocab_size": 128256
})";

constexpr const char* kPath = "ckpt/config.json";

Json qwen3() {
  return Json::parse(kQwen3Transformers4);
}
Json llama() {
  return Json::parse(kLlamaTransformers4);
}

std::string parse_error(const Json& j) {
  return error_of([&] { parse_model_config(j, kPath); });
}

void expect_qwen3_0_6b(const ModelConfig& c) {
  EXPECT_EQ(c.arch, Arch::kQwen3);
  EXPECT_EQ(c.architecture, "Qwen3ForCausalLM");
  EXPECT_EQ(c.vocab_size, 151936);
  EXPECT_EQ(c.hidden_size, 1024);
  EXPECT_EQ(c.intermediate_size, 3072);
  EXPECT_EQ(c.num_layers, 28);
  EXPECT_EQ(c.num_heads, 16);
  EXPECT_EQ(c.num_kv_heads, 8);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.group_size(), 2);
  EXPECT_DOUBLE_EQ(c.rms_norm_eps, 1e-6);
  EXPECT_DOUBLE_EQ(c.rope.theta, 1e6);
  EXPECT_EQ(c.rope.type, "default");
  EXPECT_EQ(c.max_position_embeddings, 40960);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_FALSE(c.attention_bias);
  EXPECT_EQ(c.dtype, DType::kBF16);
  EXPECT_EQ(c.bos_token_id, 151643);
  EXPECT_EQ(c.eos_token_ids, std::vector<int32_t>{151645});
  EXPECT_EQ(c.arch, Arch::kQwen3);
}

void expect_llama_3_1_8b(const ModelConfig& c) {
  EXPECT_EQ(c.arch, Arch::kLlama);
  EXPECT_EQ(c.architecture, "LlamaForCausalLM");
  EXPECT_EQ(c.vocab_size, 128256);
  EXPECT_EQ(c.hidden_size, 4096);
  EXPECT_EQ(c.intermediate_size, 14336);
  EXPECT_EQ(c.num_layers, 32);
  EXPECT_EQ(c.num_heads, 32);
  EXPECT_EQ(c.num_kv_heads, 8);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.group_size(), 4);
  EXPECT_DOUBLE_EQ(c.rms_norm_eps, 1e-5);
  EXPECT_DOUBLE_EQ(c.rope.theta, 500000.0);
  EXPECT_EQ(c.rope.type, "llama3");
  EXPECT_DOUBLE_EQ(c.rope.factor, 8.0);
  EXPECT_DOUBLE_EQ(c.rope.low_freq_factor, 1.0);
  EXPECT_DOUBLE_EQ(c.rope.high_freq_factor, 4.0);
  EXPECT_EQ(c.rope.original_max_position_embeddings, 8192);
  EXPECT_EQ(c.max_position_embeddings, 131072);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_EQ(c.dtype, DType::kBF16);
  EXPECT_EQ(c.bos_token_id, 128000);
  EXPECT_EQ(c.eos_token_ids, (std::vector<int32_t>{128001, 128008, 128009}));
  EXPECT_EQ(c.arch, Arch::kLlama);
}

TEST(ModelConfig, ReadsQwen3ConfigFromTransformers4) {
  expect_qwen3_0_6b(parse_model_config(qwen3(), kPath));
}

TEST(ModelConfig, ReadsQwen3ConfigFromTransformers5) {
  expect_qwen3_0_6b(parse_model_config(Json::parse(kQwen3Transformers5), kPath));
}

TEST(ModelConfig, ReadsLlama31ConfigFromTransformers4) {
  expect_llama_3_1_8b(parse_model_config(llama(), kPath));
}

TEST(ModelConfig, ReadsLlama31ConfigFromTransformers5) {
  expect_llama_3_1_8b(parse_model_config(Json::parse(kLlamaTransformers5), kPath));
}

TEST(ModelConfig, DerivesHeadDimAndKvHeadsWhenAbsent) {
  Json j = llama();
  j.erase("num_key_value_heads");
  ModelConfig c = parse_model_config(j, kPath);
  EXPECT_EQ(c.head_dim, 4096 / 32);
  EXPECT_EQ(c.num_kv_heads, 32);
  EXPECT_EQ(c.group_size(), 1);
  j["head_dim"] = nullptr;  // null means "unset", as HF writes it
  EXPECT_EQ(parse_model_config(j, kPath).head_dim, 128);
}

TEST(ModelConfig, TieWordEmbeddingsDefaultsToFalse) {
  Json q = qwen3();
  q.erase("tie_word_embeddings");
  EXPECT_FALSE(parse_model_config(q, kPath).tie_word_embeddings);
  Json l = llama();
  l.erase("tie_word_embeddings");
  EXPECT_FALSE(parse_model_config(l, kPath).tie_word_embeddings);
}

TEST(ModelConfig, ArchitectureFromModelTypeAloneOrArchitecturesAlone) {
  Json j = qwen3();
  j.erase("architectures");
  EXPECT_EQ(parse_model_config(j, kPath).architecture, "Qwen3ForCausalLM");
  Json k = llama();
  k.erase("model_type");
  EXPECT_EQ(parse_model_config(k, kPath).arch, Arch::kLlama);
}

TEST(ModelConfig, AcceptsLegacyRopeScalingTypeKeyAndLinearScaling) {
  Json j = llama();
  j["rope_scaling"] = {{"type", "linear"}, {"factor", 4.0}};
  ModelConfig c = parse_model_config(j, kPath);
  EXPECT_EQ(c.rope.type, "linear");
  EXPECT_DOUBLE_EQ(c.rope.factor, 4.0);
  EXPECT_DOUBLE_EQ(c.rope.theta, 500000.0);
}

TEST(ModelConfig, RopeThetaDefaultsTo10000) {
  Json j = qwen3();
  j.erase("rope_theta");
  EXPECT_DOUBLE_EQ(parse_model_config(j, kPath).rope.theta, 10000.0);
}

TEST(ModelConfig, MissingDtypeMeansFloat32) {
  Json j = qwen3();
  j.erase("torch_dtype");
  EXPECT_EQ(parse_model_config(j, kPath).dtype, DType::kF32);
  j["torch_dtype"] = "float16";
  EXPECT_EQ(parse_model_config(j, kPath).dtype, DType::kF16);
}

TEST(ModelConfig, AttentionBiasIsRead) {
  Json j = llama();
  j["attention_bias"] = true;
  EXPECT_TRUE(parse_model_config(j, kPath).attention_bias);
}

TEST(ModelConfigErrors, MissingFieldNamesFileAndField) {
  Json j = qwen3();
  j.erase("hidden_size");
  EXPECT_TRUE(contains(parse_error(j), "ckpt/config.json: missing field 'hidden_size'"));
}

TEST(ModelConfigErrors, IllTypedFieldNamesFileAndField) {
  Json j = qwen3();
  j["num_hidden_layers"] = "28";
  std::string e = parse_error(j);
  EXPECT_TRUE(contains(e, "ckpt/config.json: field 'num_hidden_layers' must be an integer"));
  EXPECT_TRUE(contains(e, "\"28\""));
  j = qwen3();
  j["rms_norm_eps"] = "tiny";
  EXPECT_TRUE(contains(parse_error(j), "field 'rms_norm_eps' must be a number"));
  j = qwen3();
  j["tie_word_embeddings"] = 1;
  EXPECT_TRUE(contains(parse_error(j), "field 'tie_word_embeddings' must be true or false"));
  j = qwen3();
  j["vocab_size"] = 1.5e5;
  EXPECT_TRUE(contains(parse_error(j), "field 'vocab_size' must be an integer"));
}

TEST(ModelConfigErrors, NonPositiveFieldNamesFileAndField) {
  for (const char* field :
       {"vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
        "num_attention_heads", "num_key_value_heads", "head_dim", "max_position_embeddings"}) {
    Json j = qwen3();
    j[field] = 0;
    EXPECT_TRUE(contains(parse_error(j),
                         str_cat("ckpt/config.json: field '", field, "' must be positive, got 0")));
  }
  Json j = qwen3();
  j["rms_norm_eps"] = -1e-6;
  EXPECT_TRUE(contains(parse_error(j), "field 'rms_norm_eps' must be positive"));
  j = qwen3();
  j["rope_theta"] = 0;
  EXPECT_TRUE(contains(parse_error(j), "field 'rope_theta' must be positive"));
}

TEST(ModelConfigErrors, TooLargeIntegerIsRejected) {
  Json j = qwen3();
  j["vocab_size"] = 5000000000ull;
  EXPECT_TRUE(contains(parse_error(j), "field 'vocab_size' is 5000000000, which is too large"));
}

TEST(ModelConfigErrors, HeadsNotMultipleOfKvHeads) {
  Json j = qwen3();
  j["num_key_value_heads"] = 3;
  std::string e = parse_error(j);
  EXPECT_TRUE(contains(e, "ckpt/config.json: field 'num_attention_heads' (16)"));
  EXPECT_TRUE(contains(e, "'num_key_value_heads' (3)"));
}

TEST(ModelConfigErrors, HeadDimAbsentAndHiddenNotDivisible) {
  Json j = llama();
  j["hidden_size"] = 4000;
  j["num_attention_heads"] = 48;
  j["num_key_value_heads"] = 8;
  EXPECT_TRUE(contains(parse_error(j), "field 'head_dim' is absent and hidden_size 4000"));
}

TEST(ModelConfigErrors, OddHeadDim) {
  Json j = qwen3();
  j["head_dim"] = 127;
  EXPECT_TRUE(contains(parse_error(j), "field 'head_dim' is 127; RoPE needs an even"));
}

TEST(ModelConfigErrors, UnsupportedArchitectureIsNamedWithTheSupportedOnes) {
  Json j = qwen3();
  j["architectures"] = {"Qwen2ForCausalLM"};
  j.erase("model_type");
  std::string e = parse_error(j);
  EXPECT_TRUE(contains(e, "ckpt/config.json: unsupported architecture 'Qwen2ForCausalLM'"));
  EXPECT_TRUE(contains(e, "supported: Qwen3ForCausalLM, LlamaForCausalLM"));
}

TEST(ModelConfigErrors, UnsupportedModelTypeIsNamedWithTheSupportedOnes) {
  Json j = qwen3();
  j.erase("architectures");
  j["model_type"] = "qwen3_moe";
  std::string e = parse_error(j);
  EXPECT_TRUE(contains(e, "unsupported model_type 'qwen3_moe'"));
  EXPECT_TRUE(contains(e, "supported: qwen3, llama"));
}

TEST(ModelConfigErrors, ArchitecturesAndModelTypeDisagree) {
  Json j = qwen3();
  j["model_type"] = "llama";
  EXPECT_TRUE(contains(parse_error(j),
                       "'architectures' says Qwen3ForCausalLM but field "
                       "'model_type' says 'llama'"));
}

TEST(ModelConfigErrors, NoArchitectureAtAll) {
  Json j = qwen3();
  j.erase("architectures");
  j.erase("model_type");
  EXPECT_TRUE(contains(parse_error(j), "neither 'architectures' nor 'model_type' is set"));
}

TEST(ModelConfigErrors, UnsupportedRopeTypeNamesFieldAndSupportedTypes) {
  Json j = qwen3();
  j["rope_scaling"] = {
      {"rope_type", "yarn"}, {"factor", 4.0}, {"original_max_position_embeddings", 32768}};
  std::string e = parse_error(j);
  EXPECT_TRUE(contains(e, "ckpt/config.json: field 'rope_scaling.rope_type' is 'yarn'"));
  EXPECT_TRUE(contains(e, "supported: default, linear, llama3"));

  j["rope_scaling"] = {{"type", "dynamic"}, {"factor", 2.0}};
  EXPECT_TRUE(contains(parse_error(j), "field 'rope_scaling.type' is 'dynamic'"));

  Json v5 = Json::parse(kQwen3Transformers5);
  v5["rope_parameters"]["rope_type"] = "longrope";
  EXPECT_TRUE(contains(parse_error(v5), "field 'rope_parameters.rope_type' is 'longrope'"));
}

TEST(ModelConfigErrors, Llama3RopeNeedsAllItsFields) {
  Json j = llama();
  j["rope_scaling"].erase("low_freq_factor");
  EXPECT_TRUE(contains(parse_error(j), "missing field 'rope_scaling.low_freq_factor'"));
  Json v5 = Json::parse(kLlamaTransformers5);
  v5["rope_parameters"]["original_max_position_embeddings"] = -1;
  EXPECT_TRUE(
      contains(parse_error(v5),
               "field 'rope_parameters.original_max_position_embeddings' must be positive"));
  j = llama();
  j["rope_scaling"]["high_freq_factor"] = 1.0;
  EXPECT_TRUE(contains(parse_error(j), "'rope_scaling.high_freq_factor' (1) must be greater"));
}

TEST(ModelConfigErrors, PerLayerTypeRopeParametersAreRejected) {
  Json j = Json::parse(kQwen3Transformers5);
  j["rope_parameters"] = {{"full_attention", {{"rope_type", "default"}, {"rope_theta", 1e6}}}};
  EXPECT_TRUE(contains(parse_error(j), "'rope_parameters.full_attention' holds per-layer-type"));
}

TEST(ModelConfigErrors, UnsupportedDtype) {
  Json j = qwen3();
  j["torch_dtype"] = "int8";
  EXPECT_TRUE(contains(parse_error(j), "field 'torch_dtype' is 'int8'"));
  Json v5 = Json::parse(kQwen3Transformers5);
  v5["dtype"] = "float8_e4m3fn";
  EXPECT_TRUE(contains(parse_error(v5), "field 'dtype' is 'float8_e4m3fn'"));
}

TEST(ModelConfigErrors, TokenIdsMustBeIdsInsideTheVocabulary) {
  Json j = qwen3();
  j["eos_token_id"] = 151936;
  EXPECT_TRUE(contains(parse_error(j), "field 'eos_token_id' holds token id 151936, outside"));
  j["eos_token_id"] = "<|im_end|>";
  EXPECT_TRUE(contains(parse_error(j), "field 'eos_token_id' must be a token id or a list"));
  j["eos_token_id"] = {1, -2};
  EXPECT_TRUE(contains(parse_error(j), "field 'eos_token_id' holds a negative token id -2"));
  j = qwen3();
  j["bos_token_id"] = 200000;
  EXPECT_TRUE(contains(parse_error(j), "field 'bos_token_id' holds token id 200000"));
}

TEST(ModelConfigErrors, FeaturesVortexDoesNotImplementAreRejected) {
  Json j = qwen3();
  j["use_sliding_window"] = true;
  EXPECT_TRUE(contains(parse_error(j), "field 'use_sliding_window' is true"));
  j = llama();
  j["hidden_act"] = "gelu";
  EXPECT_TRUE(contains(parse_error(j), "field 'hidden_act' is 'gelu'"));
  j = llama();
  j["mlp_bias"] = true;
  EXPECT_TRUE(contains(parse_error(j), "field 'mlp_bias' is true"));
  j = Json::parse(kQwen3Transformers5);
  j["layer_types"] = {"full_attention", "sliding_attention"};
  EXPECT_TRUE(contains(parse_error(j), "field 'layer_types' contains \"sliding_attention\""));
}

TEST(ModelConfigErrors, NotAnObject) {
  EXPECT_TRUE(contains(parse_error(Json::array()), "ckpt/config.json: expected a JSON object"));
}

TEST(ModelConfigHostile, IntegersAboveTheirLimitsAreRejected) {
  struct Case {
    const char* field;
    int64_t value;
    int32_t limit;
  };
  for (const Case& c :
       {Case{"vocab_size", 2000000000, kMaxVocabSize}, Case{"hidden_size", 1 << 20, kMaxHiddenSize},
        Case{"intermediate_size", 1 << 30, kMaxIntermediateSize},
        Case{"num_hidden_layers", 100000, kMaxLayers}, Case{"num_attention_heads", 4096, kMaxHeads},
        Case{"num_key_value_heads", 4096, kMaxHeads}, Case{"head_dim", 65536, kMaxHeadDim},
        Case{"max_position_embeddings", 2147483647, kMaxPositionEmbeddings}}) {
    Json j = qwen3();
    j[c.field] = c.value;
    EXPECT_EQ(parse_error(j), str_cat("ckpt/config.json: field '", c.field, "' is ", c.value,
                                      ", over the limit of ", c.limit))
        << c.field;
  }
  Json j = llama();
  j["rope_scaling"]["original_max_position_embeddings"] = 2147483647;
  EXPECT_EQ(parse_error(j),
            "ckpt/config.json: field 'rope_scaling.original_max_position_embeddings'"
            " is 2147483647, over the limit of 16777216");
}

TEST(ModelConfigHostile, ProductsThatWouldOverflowAreRejected) {
  // 1024 heads of 1024 dims: each is within its limit, the product is not (and 2^20 * hidden
  // would overflow int32 in any code that multiplied them there).
  Json j = qwen3();
  j["num_attention_heads"] = 1024;
  j["num_key_value_heads"] = 1024;
  j["head_dim"] = 1024;
  EXPECT_EQ(parse_error(j),
            "ckpt/config.json: num_attention_heads (1024) * head_dim (1024) = "
            "1048576 is over the limit of 65536");
  // Every limit at once stays exact in int64.
  j = qwen3();
  j["vocab_size"] = kMaxVocabSize;
  j["hidden_size"] = kMaxHiddenSize;
  j["intermediate_size"] = kMaxIntermediateSize;
  j["num_hidden_layers"] = kMaxLayers;
  j["num_attention_heads"] = 256;
  j["num_key_value_heads"] = 256;
  j["head_dim"] = 256;
  j["max_position_embeddings"] = kMaxPositionEmbeddings;
  ModelConfig c = parse_model_config(j, kPath);
  EXPECT_EQ(c.q_dim(), 65536);
  for (const WeightSpec& spec : weight_specs(c)) {
    EXPECT_GT(shape_numel(spec.shape), 0) << spec.name;
    if (spec.layer > 0) break;
  }
}

TEST(ModelConfigHostile, NonFiniteOrOutOfRangeFloatsAreRejected) {
  Json j = qwen3();
  j["rms_norm_eps"] = std::numeric_limits<double>::infinity();
  EXPECT_EQ(parse_error(j), "ckpt/config.json: field 'rms_norm_eps' must be positive, got null");
  j["rms_norm_eps"] = std::nan("");
  EXPECT_TRUE(contains(parse_error(j), "field 'rms_norm_eps' must be positive"));
  j["rms_norm_eps"] = 2.0;
  EXPECT_EQ(parse_error(j), "ckpt/config.json: field 'rms_norm_eps' is 2.0, over the limit of 1");
  j = qwen3();
  j["rope_theta"] = 1e300;
  EXPECT_EQ(parse_error(j),
            "ckpt/config.json: field 'rope_theta' is 1e+300, over the limit of 1e+12");
  j["rope_theta"] = -10000.0;
  EXPECT_TRUE(contains(parse_error(j), "field 'rope_theta' must be positive, got -10000.0"));
  j = llama();
  j["rope_scaling"]["factor"] = -8.0;
  EXPECT_TRUE(contains(parse_error(j), "field 'rope_scaling.factor' must be positive"));
  j["rope_scaling"]["factor"] = 1e9;
  EXPECT_TRUE(
      contains(parse_error(j), "field 'rope_scaling.factor' is 1000000000.0, over the limit"));
  j = llama();
  j["rope_scaling"]["low_freq_factor"] = std::numeric_limits<double>::quiet_NaN();
  EXPECT_TRUE(contains(parse_error(j), "field 'rope_scaling.low_freq_factor' must be positive"));
  // In a file, JSON cannot spell NaN or infinity, and a number too large for a double is a
  // syntax error rather than inf.
  testing::TempDir dir;
  testing::write_text(dir.file("config.json"), "{\"rms_norm_eps\": 1e400}");
  EXPECT_TRUE(contains(error_of([&] { load_model_config(dir.path()); }),
                       dir.file("config.json") + ": invalid JSON at byte"));
  testing::write_text(dir.file("config.json"), "{\"rms_norm_eps\": NaN}");
  EXPECT_TRUE(contains(error_of([&] { load_model_config(dir.path()); }),
                       dir.file("config.json") + ": invalid JSON at byte"));
}

TEST(ModelConfigHostile, TokenIdsNearInt32MaxAreRejected) {
  Json j = qwen3();
  j["eos_token_id"] = 2147483647;
  EXPECT_EQ(parse_error(j),
            "ckpt/config.json: field 'eos_token_id' holds token id 2147483647, "
            "outside the vocabulary (vocab_size 151936)");
  j["eos_token_id"] = 2147483648ull;
  EXPECT_TRUE(contains(parse_error(j), "field 'eos_token_id' is 2147483648, which is too large"));
  j["eos_token_id"] = Json::array({1, -5});
  EXPECT_TRUE(contains(parse_error(j), "field 'eos_token_id' holds a negative token id -5"));
  j["eos_token_id"] = Json::array();
  for (int i = 0; i < 2000; ++i) j["eos_token_id"].push_back(i);
  EXPECT_EQ(parse_error(j),
            "ckpt/config.json: field 'eos_token_id' lists 2000 token ids; at most "
            "1024 are supported");
  testing::TempDir dir;
  testing::write_text(dir.file("config.json"), kQwen3Transformers4);
  testing::write_text(dir.file("generation_config.json"), R"({"eos_token_id": [1, 2000000000]})");
  EXPECT_EQ(error_of([&] { load_model_config(dir.path()); }),
            dir.file("generation_config.json") +
                ": field 'eos_token_id' holds token id "
                "2000000000, outside the vocabulary (vocab_size "
                "151936)");
}

TEST(ModelConfigHostile, HostileFilesEndInAnErrorNamingThem) {
  testing::TempDir dir;
  const std::string config = dir.file("config.json");
  // Nesting deeper than any stack could recurse.
  testing::write_text(config, "{\"a\": " + std::string(1000000, '['));
  EXPECT_EQ(error_of([&] { load_model_config(dir.path()); }),
            config + ": JSON nested deeper than 128 levels (the limit) at byte 133");
  // A repeated key is ambiguous (parsers disagree on which one wins).
  testing::write_text(config, R"({"vocab_size": 10, "vocab_size": 2000000000})");
  EXPECT_EQ(error_of([&] { load_model_config(dir.path()); }),
            config + ": the key \"vocab_size\" appears twice in the top-level object");
  // A 2 GiB file is refused before it is read.
  testing::write_text(config, "{");
  std::filesystem::resize_file(config, uint64_t{2} << 30);
  EXPECT_EQ(error_of([&] { load_model_config(dir.path()); }),
            config + ": is 2147483648 bytes, over the limit of 67108864 bytes for a JSON file");
  std::filesystem::remove(config);
  std::filesystem::create_directory(config);
  EXPECT_EQ(error_of([&] { load_model_config(dir.path()); }),
            config + ": is a directory, expected a JSON file");
  std::filesystem::remove(config);
  testing::write_text(config, "");
  EXPECT_EQ(error_of([&] { load_model_config(dir.path()); }), config + ": is empty, expected JSON");
  testing::write_text(config, kQwen3Transformers4);
  ASSERT_EQ(::mkfifo(dir.file("generation_config.json").c_str(), 0600), 0);
  EXPECT_EQ(error_of([&] { load_model_config(dir.path()); }),
            dir.file("generation_config.json") + ": is not a regular file, expected a JSON file");
}

TEST(ModelConfigHostile, HostileStringsAreQuotedOnOneBoundedLine) {
  Json j = qwen3();
  j["architectures"] = Json::array({"Evil\nModel" + std::string(1000, 'x')});
  std::string e = parse_error(j);
  EXPECT_TRUE(contains(e, "unsupported architecture 'Evil\\nModelxxx"));
  EXPECT_EQ(e.find('\n'), std::string::npos);
  EXPECT_LT(e.size(), 300u);
  j = qwen3();
  j["layer_types"] = Json::array({Json::array({std::string(100000, 'y')})});
  e = parse_error(j);
  EXPECT_TRUE(contains(e, "field 'layer_types' contains [\"yyy"));
  EXPECT_LT(e.size(), 300u);
}

TEST(LoadModelConfig, GenerationConfigEosComesFirstAndExtendsConfigEos) {
  testing::TempDir dir;
  testing::write_text(dir.file("config.json"), kQwen3Transformers4);
  EXPECT_EQ(load_model_config(dir.path()).eos_token_ids, std::vector<int32_t>{151645});
  testing::write_text(dir.file("generation_config.json"), R"({
    "bos_token_id": 151643, "do_sample": true, "eos_token_id": [151643, 151645],
    "pad_token_id": 151643, "temperature": 0.6, "top_k": 20, "top_p": 0.95})");
  ModelConfig c = load_model_config(dir.path());
  EXPECT_EQ(c.eos_token_ids, (std::vector<int32_t>{151643, 151645}));
  testing::write_text(dir.file("generation_config.json"), R"({"eos_token_id": 151643})");
  EXPECT_EQ(load_model_config(dir.path()).eos_token_ids, (std::vector<int32_t>{151643, 151645}));
}

TEST(LoadModelConfig, BosFromGenerationConfigWhenConfigHasNone) {
  testing::TempDir dir;
  Json j = qwen3();
  j.erase("bos_token_id");
  testing::write_text(dir.file("config.json"), j.dump());
  testing::write_text(dir.file("generation_config.json"), R"({"bos_token_id": 151643})");
  EXPECT_EQ(load_model_config(dir.path()).bos_token_id, 151643);
}

TEST(LoadModelConfig, ErrorsNameTheFile) {
  testing::TempDir dir;
  EXPECT_TRUE(contains(error_of([&] { load_model_config(dir.path()); }),
                       dir.file("config.json") + ": cannot open"));
  testing::write_text(dir.file("config.json"), "{\"vocab_size\": ");
  EXPECT_TRUE(contains(error_of([&] { load_model_config(dir.path()); }),
                       dir.file("config.json") + ": invalid JSON"));
  testing::write_text(dir.file("config.json"), kLlamaTransformers4);
  testing::write_text(dir.file("generation_config.json"), R"({"eos_token_id": "eos"})");
  EXPECT_TRUE(contains(error_of([&] { load_model_config(dir.path()); }),
                       dir.file("generation_config.json") + ": field 'eos_token_id'"));
}

TEST(ModelConfigToJson, RoundTripsThroughTheParser) {
  for (const char* text : {kQwen3Transformers4, kLlamaTransformers5}) {
    ModelConfig a = parse_model_config(Json::parse(text), kPath);
    ModelConfig b = parse_model_config(model_config_to_json(a), "written.json");
    EXPECT_EQ(model_config_to_json(a), model_config_to_json(b));
    EXPECT_EQ(b.architecture, a.architecture);
    EXPECT_EQ(b.rope.type, a.rope.type);
    EXPECT_EQ(b.eos_token_ids, a.eos_token_ids);
    EXPECT_EQ(b.head_dim, a.head_dim);
  }
}

}  // namespace
}  // namespace vortex
