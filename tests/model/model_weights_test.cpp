#include "model/model_weights.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>

#include "core/thread_pool.h"
#include "model/test_files.h"

namespace vortex {
namespace {

using testing::contains;
using testing::error_of;

// A Qwen3-shaped model small enough to write in a test: hidden 64, intermediate 160, 4 layers.
ModelConfig tiny_qwen3(bool tied = true) {
  ModelConfig c;
  c.arch = Arch::kQwen3;
  c.architecture = "Qwen3ForCausalLM";
  c.vocab_size = 96;
  c.hidden_size = 64;
  c.intermediate_size = 160;
  c.num_layers = 4;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.head_dim = 32;
  c.max_position_embeddings = 256;
  c.tie_word_embeddings = tied;
  return c;
}

ModelConfig tiny_llama() {
  ModelConfig c = tiny_qwen3(false);
  c.arch = Arch::kLlama;
  c.architecture = "LlamaForCausalLM";
  return c;
}

using Named = std::vector<std::pair<std::string, Tensor>>;

// Writes `named` as DIR/model.safetensors and opens it again.
SafetensorsArchive write_and_open(const testing::TempDir& dir, const Named& named) {
  write_safetensors(dir.file("model.safetensors"), named);
  return SafetensorsArchive::open_dir(dir.path());
}

Named without(Named named, const std::string& name) {
  std::erase_if(named, [&](const auto& p) { return p.first == name; });
  return named;
}

Named replaced(Named named, const std::string& name, Tensor t) {
  for (auto& p : named) {
    if (p.first == name) p.second = t;
  }
  return named;
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() &&
         std::memcmp(a.data(), b.data(), a.nbytes()) == 0;
}

std::string load_error(const SafetensorsArchive& archive, const ModelConfig& c) {
  return error_of([&] { load_model_weights(archive, c); });
}

TEST(WeightSpecs, ListHuggingFaceNamesAndShapes) {
  std::vector<WeightSpec> specs = weight_specs(tiny_qwen3());
  // embed + 4 layers x (2 norms + 4 projections + 2 qk norms + 3 mlp) + final norm; tied.
  ASSERT_EQ(specs.size(), 1u + 4u * 11u + 1u);
  EXPECT_EQ(specs.front().name, "model.embed_tokens.weight");
  EXPECT_EQ(specs.front().shape, (Shape{96, 64}));
  EXPECT_EQ(specs.back().name, "model.norm.weight");
  auto find = [&](const std::string& name) {
    for (const WeightSpec& s : specs) {
      if (s.name == name) return s;
    }
    ADD_FAILURE() << "no spec " << name;
    return WeightSpec{};
  };
  EXPECT_EQ(find("model.layers.2.self_attn.q_proj.weight").shape, (Shape{128, 64}));
  EXPECT_EQ(find("model.layers.2.self_attn.k_proj.weight").shape, (Shape{64, 64}));
  EXPECT_EQ(find("model.layers.2.self_attn.o_proj.weight").shape, (Shape{64, 128}));
  EXPECT_EQ(find("model.layers.2.self_attn.q_norm.weight").shape, Shape{32});
  EXPECT_EQ(find("model.layers.2.mlp.up_proj.weight").shape, (Shape{160, 64}));
  EXPECT_EQ(find("model.layers.2.mlp.down_proj.weight").shape, (Shape{64, 160}));
  EXPECT_EQ(find("model.layers.2.mlp.down_proj.weight").layer, 2);
  EXPECT_EQ(weight_specs(tiny_qwen3(false)).back().name, "lm_head.weight");
  EXPECT_EQ(weight_specs(tiny_llama()).size(), 1u + 4u * 9u + 2u);
}

TEST(LoadModelWeights, TiedCheckpointLoadsAsViewsSharingTheEmbedding) {
  testing::TempDir dir;
  ModelConfig c = tiny_qwen3();
  ModelWeights random = random_model_weights(c, 7);
  SafetensorsArchive archive = write_and_open(dir, named_weights(random, c));
  EXPECT_EQ(archive.find("lm_head.weight"), nullptr);

  ModelWeights w = load_model_weights(archive, c);
  ASSERT_EQ(w.layers.size(), 4u);
  EXPECT_EQ(w.lm_head.data(), w.embed_tokens.data());
  EXPECT_EQ(w.embed_tokens.data(), archive.find("model.embed_tokens.weight")->data);
  EXPECT_EQ(w.layers[3][LayerTensor::kUpProj].data(),
            archive.find("model.layers.3.mlp.up_proj.weight")->data);
  EXPECT_TRUE(same_bytes(w.layers[1][LayerTensor::kKNorm], random.layers[1][LayerTensor::kKNorm]));
  EXPECT_TRUE(same_bytes(w.layers[2][LayerTensor::kOProj], random.layers[2][LayerTensor::kOProj]));
  EXPECT_TRUE(same_bytes(w.final_norm, random.final_norm));
  EXPECT_FALSE(w.layers[0][LayerTensor::kQBias].defined());
}

TEST(LoadModelWeights, TiedConfigIgnoresAStoredLmHead) {
  testing::TempDir dir;
  ModelConfig untied = tiny_qwen3(false);
  SafetensorsArchive archive =
      write_and_open(dir, named_weights(random_model_weights(untied, 1), untied));
  ModelWeights w = load_model_weights(archive, tiny_qwen3(true));
  EXPECT_EQ(w.lm_head.data(), w.embed_tokens.data());
}

TEST(LoadModelWeights, UntiedCheckpointHasItsOwnLmHead) {
  testing::TempDir dir;
  ModelConfig c = tiny_qwen3(false);
  ModelWeights random = random_model_weights(c, 7);
  ModelWeights w = load_model_weights(write_and_open(dir, named_weights(random, c)), c);
  EXPECT_NE(w.lm_head.data(), w.embed_tokens.data());
  EXPECT_TRUE(same_bytes(w.lm_head, random.lm_head));
}

TEST(LoadModelWeights, UntiedCheckpointWithoutLmHeadIsAnError) {
  testing::TempDir dir;
  ModelConfig tied = tiny_qwen3(true);
  SafetensorsArchive archive =
      write_and_open(dir, named_weights(random_model_weights(tied, 1), tied));
  EXPECT_TRUE(contains(load_error(archive, tiny_qwen3(false)),
                       dir.file("model.safetensors") +
                           ": missing tensor 'lm_head.weight' (config.json has "
                           "tie_word_embeddings: false)"));
}

TEST(LoadModelWeights, MissingQkNormIsAnErrorThatSaysWhy) {
  testing::TempDir dir;
  ModelConfig c = tiny_qwen3();
  Named named = without(named_weights(random_model_weights(c, 1), c),
                        "model.layers.1.self_attn.k_norm.weight");
  EXPECT_TRUE(contains(load_error(write_and_open(dir, named), c),
                       "missing tensor 'model.layers.1.self_attn.k_norm.weight' (Qwen3 needs "
                       "QK-norm weights)"));
}

TEST(LoadModelWeights, MissingMatrixIsAnError) {
  testing::TempDir dir;
  ModelConfig c = tiny_qwen3();
  Named named = without(named_weights(random_model_weights(c, 1), c), "model.norm.weight");
  EXPECT_TRUE(
      contains(load_error(write_and_open(dir, named), c), "missing tensor 'model.norm.weight'"));
}

TEST(LoadModelWeights, WrongShapeNamesFileTensorAndBothShapes) {
  testing::TempDir dir;
  ModelConfig c = tiny_qwen3();
  Named named =
      replaced(named_weights(random_model_weights(c, 1), c), "model.layers.3.mlp.up_proj.weight",
               Tensor::zeros(DType::kBF16, {64, 160}));
  EXPECT_TRUE(contains(load_error(write_and_open(dir, named), c),
                       dir.file("model.safetensors") +
                           ": tensor 'model.layers.3.mlp.up_proj.weight' has shape [64, 160], "
                           "expected [160, 64]"));
}

TEST(LoadModelWeights, IntegerWeightsAreRejected) {
  testing::TempDir dir;
  ModelConfig c = tiny_qwen3();
  Named named = replaced(named_weights(random_model_weights(c, 1), c), "model.norm.weight",
                         Tensor::zeros(DType::kI32, {64}));
  EXPECT_TRUE(
      contains(load_error(write_and_open(dir, named), c),
               "tensor 'model.norm.weight' has dtype i32; weights must be f32, bf16 or f16"));
}

TEST(LoadModelWeights, StoredDtypeIsKept) {
  testing::TempDir dir;
  ModelConfig c = tiny_qwen3();
  Named named = named_weights(random_model_weights(c, 1, DType::kF16), c);
  named = replaced(named, "model.norm.weight", Tensor::zeros(DType::kF32, {64}));
  ModelWeights w = load_model_weights(write_and_open(dir, named), c);
  EXPECT_EQ(w.layers[0][LayerTensor::kQProj].dtype(), DType::kF16);
  EXPECT_EQ(w.final_norm.dtype(), DType::kF32);
}

TEST(LoadModelWeights, LlamaNeedsNoQkNorm) {
  testing::TempDir dir;
  ModelConfig c = tiny_llama();
  ModelWeights w =
      load_model_weights(write_and_open(dir, named_weights(random_model_weights(c, 3), c)), c);
  EXPECT_FALSE(w.layers[0][LayerTensor::kQNorm].defined());
  EXPECT_TRUE(w.layers[0][LayerTensor::kQProj].defined());
}

TEST(LoadModelWeights, AttentionBiasNeedsBiasTensors) {
  testing::TempDir dir;
  ModelConfig c = tiny_llama();
  c.attention_bias = true;
  Named named = named_weights(random_model_weights(c, 3), c);
  ModelWeights w = load_model_weights(write_and_open(dir, named), c);
  EXPECT_EQ(w.layers[2][LayerTensor::kKBias].shape(), Shape{64});
  EXPECT_EQ(w.layers[2][LayerTensor::kOBias].shape(), Shape{64});
  testing::TempDir dir2;
  EXPECT_TRUE(contains(
      load_error(write_and_open(dir2, without(named, "model.layers.0.self_attn.v_proj.bias")), c),
      "missing tensor 'model.layers.0.self_attn.v_proj.bias' (config.json has attention_bias: "
      "true)"));
}

TEST(LoadModelWeights, CheckpointWithMoreLayersThanTheConfigIsAnError) {
  testing::TempDir dir;
  ModelConfig c = tiny_qwen3();
  SafetensorsArchive archive = write_and_open(dir, named_weights(random_model_weights(c, 1), c));
  ModelConfig fewer = c;
  fewer.num_layers = 3;
  EXPECT_TRUE(contains(load_error(archive, fewer), "has tensor 'model.layers.3."));
  EXPECT_TRUE(contains(load_error(archive, fewer), "num_hidden_layers = 3"));
}

TEST(LoadModelWeights, ShardedCheckpointLoads) {
  testing::TempDir dir;
  ModelConfig c = tiny_qwen3(false);
  ModelWeights random = random_model_weights(c, 11);
  Named named = named_weights(random, c);
  Named first(named.begin(), named.begin() + named.size() / 2);
  Named second(named.begin() + named.size() / 2, named.end());
  write_safetensors(dir.file("model-00001-of-00002.safetensors"), first);
  write_safetensors(dir.file("model-00002-of-00002.safetensors"), second);
  Json map = Json::object();
  for (const auto& [name, t] : first) map[name] = "model-00001-of-00002.safetensors";
  for (const auto& [name, t] : second) map[name] = "model-00002-of-00002.safetensors";
  testing::write_text(dir.file("model.safetensors.index.json"), Json{{"weight_map", map}}.dump());

  ModelWeights w = load_model_weights(SafetensorsArchive::open_dir(dir.path()), c);
  EXPECT_TRUE(same_bytes(w.embed_tokens, random.embed_tokens));
  EXPECT_TRUE(same_bytes(w.lm_head, random.lm_head));
  EXPECT_TRUE(
      same_bytes(w.layers[3][LayerTensor::kDownProj], random.layers[3][LayerTensor::kDownProj]));
}

// Large enough that the embedding spans several generator chunks.
ModelConfig multi_chunk_config() {
  ModelConfig c = tiny_qwen3();
  c.vocab_size = 5000;
  return c;
}

TEST(RandomModelWeights, SameSeedGivesSameWeightsWhateverTheThreadCount) {
  ModelConfig c = multi_chunk_config();
  ThreadPool::set_global_threads(1);
  ModelWeights one = random_model_weights(c, 42);
  ThreadPool::set_global_threads(3);
  ModelWeights three = random_model_weights(c, 42);
  ThreadPool::set_global_threads(0);
  Named a = named_weights(one, c), b = named_weights(three, c);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(same_bytes(a[i].second, b[i].second)) << a[i].first;
  }
}

TEST(RandomModelWeights, DifferentSeedsAndDifferentTensorsDiffer) {
  ModelConfig c = tiny_qwen3();
  ModelWeights a = random_model_weights(c, 1), b = random_model_weights(c, 2);
  EXPECT_FALSE(same_bytes(a.layers[0][LayerTensor::kQProj], b.layers[0][LayerTensor::kQProj]));
  Tensor q0 = a.layers[0][LayerTensor::kQProj], q1 = a.layers[1][LayerTensor::kQProj];
  EXPECT_NE(std::memcmp(q0.data(), q1.data(), q0.nbytes()), 0);
  Tensor gate = a.layers[0][LayerTensor::kGateProj], up = a.layers[0][LayerTensor::kUpProj];
  EXPECT_NE(std::memcmp(gate.data(), up.data(), gate.nbytes()), 0);
}

TEST(RandomModelWeights, MatricesHaveStd002AndNormsAreOne) {
  ModelConfig c = multi_chunk_config();
  ModelWeights w = random_model_weights(c, 5, DType::kF32);
  Tensor e = w.embed_tokens;
  double sum = 0, sq = 0, max_abs = 0;
  for (int64_t i = 0; i < e.numel(); ++i) {
    double v = e.data_as<float>()[i];
    sum += v;
    sq += v * v;
    max_abs = std::max(max_abs, std::abs(v));
  }
  double mean = sum / e.numel(), std = std::sqrt(sq / e.numel() - mean * mean);
  EXPECT_NEAR(mean, 0.0, 1e-3);
  EXPECT_NEAR(std, 0.02, 0.0005);
  EXPECT_LT(max_abs, 0.02 * 4.4);
  EXPECT_GT(max_abs, 0.02 * 3.0);
  for (const Tensor& n :
       {w.layers[0][LayerTensor::kInputNorm], w.layers[3][LayerTensor::kKNorm], w.final_norm}) {
    for (int64_t i = 0; i < n.numel(); ++i) ASSERT_EQ(n.data_as<float>()[i], 1.0f);
  }
  EXPECT_EQ(w.lm_head.data(), w.embed_tokens.data());
}

TEST(RandomModelWeights, DtypeIsHonouredAndIntegersRejected) {
  ModelConfig c = tiny_qwen3();
  ModelWeights bf16 = random_model_weights(c, 9);
  EXPECT_EQ(bf16.layers[0][LayerTensor::kVProj].dtype(), DType::kBF16);
  ModelWeights f32 = random_model_weights(c, 9, DType::kF32);
  // bf16 weights are the f32 ones rounded.
  const Tensor &b = bf16.layers[0][LayerTensor::kVProj], &f = f32.layers[0][LayerTensor::kVProj];
  for (int64_t i = 0; i < b.numel(); ++i) {
    ASSERT_EQ(b.data_as<uint16_t>()[i], f32_to_bf16(f.data_as<float>()[i]));
  }
  ModelWeights f16 = random_model_weights(c, 9, DType::kF16);
  EXPECT_NEAR(f16_to_f32(f16.layers[0][LayerTensor::kVProj].data_as<uint16_t>()[5]),
              f.data_as<float>()[5], 1e-4);
  EXPECT_TRUE(contains(error_of([&] { random_model_weights(c, 1, DType::kI32); }),
                       "random weights must be f32, bf16 or f16, not i32"));
}

}  // namespace
}  // namespace vortex
