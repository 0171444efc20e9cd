#include "model/model_weights.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "core/error.h"
#include "core/rng.h"
#include "core/thread_pool.h"
#include "model/architecture.h"

namespace vortex {
namespace {

// A WeightSpec plus where the tensor lives in ModelWeights: a layer's role, or a member of
// ModelWeights (embeddings, final norm, lm_head).
struct Slot {
  WeightSpec spec;
  LayerTensor role = LayerTensor::kCount;
  Tensor ModelWeights::*model_member = nullptr;
  std::string needed_because;  // for the error when it is missing
};

Tensor& target(ModelWeights& w, const Slot& s) {
  return s.model_member ? w.*(s.model_member) : w.layers[static_cast<size_t>(s.spec.layer)][s.role];
}

const Tensor& target(const ModelWeights& w, const Slot& s) {
  return s.model_member ? w.*(s.model_member) : w.layers[static_cast<size_t>(s.spec.layer)][s.role];
}

std::vector<Slot> slots(const ModelConfig& c) {
  const int64_t hidden = c.hidden_size, vocab = c.vocab_size;
  std::vector<Slot> out;
  auto global = [&](std::string name, Shape shape, WeightKind kind, Tensor ModelWeights::*m,
                    std::string why) {
    out.push_back(Slot{WeightSpec{std::move(name), std::move(shape), kind, -1}, LayerTensor::kCount,
                       m, std::move(why)});
  };
  global("model.embed_tokens.weight", {vocab, hidden}, WeightKind::kMatrix,
         &ModelWeights::embed_tokens, "");
  const std::vector<LayerTensorSpec> layer = architecture_of(c.arch).layer_tensors(c);
  for (int i = 0; i < c.num_layers; ++i) {
    const std::string prefix = str_cat("model.layers.", i, ".");
    for (const LayerTensorSpec& t : layer) {
      out.push_back(Slot{WeightSpec{prefix + t.suffix, t.shape, t.kind, i}, t.role, nullptr,
                         t.needed_because});
    }
  }
  global("model.norm.weight", {hidden}, WeightKind::kNorm, &ModelWeights::final_norm, "");
  if (!c.tie_word_embeddings) {
    global("lm_head.weight", {vocab, hidden}, WeightKind::kMatrix, &ModelWeights::lm_head,
           "config.json has tie_word_embeddings: false");
  }
  return out;
}

bool is_float(DType t) {
  return t == DType::kF32 || t == DType::kBF16 || t == DType::kF16;
}

// A checkpoint with more layers than the config is almost surely paired with the wrong config.
void check_no_extra_layers(const SafetensorsArchive& archive, const ModelConfig& c) {
  constexpr std::string_view kPrefix = "model.layers.";
  for (const std::string& name : archive.names()) {
    if (name.compare(0, kPrefix.size(), kPrefix) != 0) continue;
    long layer = std::strtol(name.c_str() + kPrefix.size(), nullptr, 10);
    if (layer >= c.num_layers) {
      fail(archive.source(), ": has tensor '", printable(name),
           "' but config.json says num_hidden_layers = ", c.num_layers);
    }
  }
}

// Standard-normal quantiles at the midpoints of 2^16 equal-probability bins: a 16-bit slice of a
// random draw indexes it, so one 64-bit draw gives four normal samples with a table lookup each.
// Billions of weights must fill in seconds; Box-Muller's log and cos per sample are too slow.
// Tails are cut at about 4.3 sigma.
const std::vector<float>& normal_quantiles() {
  static const std::vector<float> table = [] {
    constexpr int kBins = 1 << 16;
    std::vector<float> t(kBins);
    for (int i = kBins / 2; i < kBins; ++i) {
      double p = (i + 0.5) / kBins;
      // Shore's approximation (about 1e-2), then Newton steps on Phi(x) = p.
      double x = 5.5556 * (1.0 - std::pow((1.0 - p) / p, 0.1186));
      for (int step = 0; step < 4; ++step) {
        double cdf = 0.5 * std::erfc(-x / std::sqrt(2.0));
        double pdf = std::exp(-0.5 * x * x) / std::sqrt(2.0 * 3.141592653589793);
        x -= (cdf - p) / pdf;
      }
      t[static_cast<size_t>(i)] = static_cast<float>(x);
      t[static_cast<size_t>(kBins - 1 - i)] = static_cast<float>(-x);
    }
    return t;
  }();
  return table;
}

uint64_t name_hash(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a
  for (unsigned char ch : s) h = (h ^ ch) * 0x100000001b3ull;
  return h;
}

constexpr int64_t kChunk = 1 << 16;  // elements per independently seeded chunk
constexpr float kWeightStd = 0.02f;

void fill_chunk(Tensor& t, WeightKind kind, uint64_t seed, int64_t begin, int64_t end) {
  const float* quantiles = normal_quantiles().data();
  float buf[1024];
  Rng rng(seed);
  for (int64_t i = begin; i < end; i += 1024) {
    int64_t n = std::min<int64_t>(1024, end - i);
    if (kind == WeightKind::kNorm) {
      std::fill(buf, buf + n, 1.0f);
    } else {
      for (int64_t k = 0; k < n; k += 4) {
        uint64_t r = rng.next_u64();
        for (int64_t q = 0; q < 4 && k + q < n; ++q) {
          buf[k + q] = kWeightStd * quantiles[(r >> (16 * q)) & 0xffff];
        }
      }
    }
    switch (t.dtype()) {
      case DType::kF32:
        std::memcpy(t.data_as<float>() + i, buf, static_cast<size_t>(n) * 4);
        break;
      case DType::kBF16:
        for (int64_t k = 0; k < n; ++k) t.data_as<uint16_t>()[i + k] = f32_to_bf16(buf[k]);
        break;
      case DType::kF16:
        for (int64_t k = 0; k < n; ++k) t.data_as<uint16_t>()[i + k] = f32_to_f16(buf[k]);
        break;
      default:
        VORTEX_ASSERT(false);
    }
  }
}

}  // namespace

std::vector<WeightSpec> weight_specs(const ModelConfig& config) {
  std::vector<WeightSpec> out;
  for (Slot& s : slots(config)) out.push_back(std::move(s.spec));
  return out;
}

ModelWeights load_model_weights(const SafetensorsArchive& archive, const ModelConfig& config) {
  check_no_extra_layers(archive, config);
  ModelWeights w;
  w.layers.resize(static_cast<size_t>(config.num_layers));
  for (const Slot& s : slots(config)) {
    const TensorEntry* e = archive.find(s.spec.name);
    if (!e) {
      fail(archive.source(), ": missing tensor '", s.spec.name, "'",
           s.needed_because.empty() ? "" : str_cat(" (", s.needed_because, ")"));
    }
    if (!is_float(e->dtype)) {
      fail(e->file, ": tensor '", s.spec.name, "' has dtype ", dtype_name(e->dtype),
           "; weights must be f32, bf16 or f16");
    }
    if (e->shape != s.spec.shape) {
      fail(e->file, ": tensor '", s.spec.name, "' has shape ", shape_str(e->shape), ", expected ",
           shape_str(s.spec.shape));
    }
    target(w, s) = archive.tensor(s.spec.name);
  }
  if (config.tie_word_embeddings) w.lm_head = w.embed_tokens;
  return w;
}

ModelWeights random_model_weights(const ModelConfig& config, uint64_t seed, DType dtype) {
  if (!is_float(dtype)) {
    fail("random weights must be f32, bf16 or f16, not ", dtype_name(dtype));
  }
  ModelWeights w;
  w.layers.resize(static_cast<size_t>(config.num_layers));
  std::vector<Slot> all = slots(config);

  struct Job {
    Tensor* tensor;
    WeightKind kind;
    uint64_t seed;
    int64_t first_chunk;
  };
  std::vector<Job> jobs;
  int64_t total_chunks = 0;
  for (const Slot& s : all) {
    Tensor& t = target(w, s);
    t = Tensor::empty(dtype, s.spec.shape);
    jobs.push_back(Job{&t, s.spec.kind, seed ^ name_hash(s.spec.name), total_chunks});
    total_chunks += (t.numel() + kChunk - 1) / kChunk;
  }

  ThreadPool::global().parallel_for(total_chunks, 1, [&](int64_t begin, int64_t end) {
    // Jobs are sorted by first_chunk: find the one holding chunk `begin`, then walk forward.
    size_t j = static_cast<size_t>(
        std::upper_bound(jobs.begin(), jobs.end(), begin,
                         [](int64_t c, const Job& job) { return c < job.first_chunk; }) -
        jobs.begin() - 1);
    for (int64_t c = begin; c < end; ++c) {
      while (j + 1 < jobs.size() && jobs[j + 1].first_chunk <= c) ++j;
      const Job& job = jobs[j];
      int64_t local = c - job.first_chunk;
      int64_t lo = local * kChunk, hi = std::min(lo + kChunk, job.tensor->numel());
      Rng mix(job.seed + static_cast<uint64_t>(local) * 0x9e3779b97f4a7c15ull);
      fill_chunk(*job.tensor, job.kind, mix.next_u64(), lo, hi);
    }
  });
  if (config.tie_word_embeddings) w.lm_head = w.embed_tokens;
  return w;
}

std::vector<std::pair<std::string, Tensor>> named_weights(const ModelWeights& weights,
                                                          const ModelConfig& config) {
  if (weights.layers.size() != static_cast<size_t>(config.num_layers)) {
    fail("model weights have ", weights.layers.size(), " layers but the config has ",
         config.num_layers);
  }
  std::vector<std::pair<std::string, Tensor>> out;
  for (const Slot& s : slots(config)) {
    const Tensor& t = target(weights, s);
    if (!t.defined()) fail("model weights lack '", s.spec.name, "'");
    out.emplace_back(s.spec.name, t);
  }
  return out;
}

}  // namespace vortex
