#include "model/model_config.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>

#include "core/error.h"

namespace vortex {
namespace {

struct ArchInfo {
  Arch arch;
  std::string_view model_type;
  std::string_view class_name;
};

constexpr ArchInfo kArchs[] = {
    {Arch::kQwen3, "qwen3", "Qwen3ForCausalLM"},
    {Arch::kLlama, "llama", "LlamaForCausalLM"},
};

constexpr std::string_view kSupportedRopeTypes = "default, linear, llama3";

std::string supported_classes() {
  std::string out;
  for (const ArchInfo& a : kArchs) out += str_cat(out.empty() ? "" : ", ", a.class_name);
  return out;
}

std::string supported_model_types() {
  std::string out;
  for (const ArchInfo& a : kArchs) out += str_cat(out.empty() ? "" : ", ", a.model_type);
  return out;
}

// A short rendering of a JSON value for error messages.
std::string show(const Json& v) {
  return json_excerpt(v, 60);
}

// Reads typed fields of one JSON object, naming the file and the dotted field in every error.
class Fields {
 public:
  Fields(const Json& obj, const std::string& path, std::string prefix = "")
      : obj_(obj), path_(path), prefix_(std::move(prefix)) {}

  std::string name(std::string_view key) const { return str_cat(prefix_, key); }

  // The value of `key`, or nullptr when it is absent or null (HF writes null for "unset").
  const Json* find(std::string_view key) const {
    auto it = obj_.find(key);
    if (it == obj_.end() || it->is_null()) return nullptr;
    return &*it;
  }
  bool has(std::string_view key) const { return find(key) != nullptr; }

  [[noreturn]] void bad(std::string_view key, const std::string& what) const {
    fail(path_, ": field '", name(key), "' ", what);
  }
  [[noreturn]] void missing(std::string_view key) const {
    fail(path_, ": missing field '", name(key), "'");
  }

  int64_t int_value(std::string_view key, const Json& v) const {
    if (!v.is_number_integer()) bad(key, str_cat("must be an integer, got ", show(v)));
    if (v.is_number_unsigned()) {
      uint64_t u = v.get<uint64_t>();
      if (u > static_cast<uint64_t>(std::numeric_limits<int32_t>::max())) {
        bad(key, str_cat("is ", u, ", which is too large"));
      }
      return static_cast<int64_t>(u);
    }
    int64_t s = v.get<int64_t>();
    if (s > std::numeric_limits<int32_t>::max() || s < std::numeric_limits<int32_t>::min()) {
      bad(key, str_cat("is ", s, ", which is out of range"));
    }
    return s;
  }

  // An integer in [1, max].
  int32_t positive_int(std::string_view key, int32_t max) const {
    const Json* v = find(key);
    if (!v) missing(key);
    return positive_int(key, *v, max);
  }
  int32_t positive_int(std::string_view key, const Json& v, int32_t max) const {
    int64_t x = int_value(key, v);
    if (x <= 0) bad(key, str_cat("must be positive, got ", x));
    if (x > max) bad(key, str_cat("is ", x, ", over the limit of ", max));
    return static_cast<int32_t>(x);
  }
  std::optional<int32_t> optional_positive_int(std::string_view key, int32_t max) const {
    const Json* v = find(key);
    if (!v) return std::nullopt;
    return positive_int(key, *v, max);
  }

  // A finite number in (0, max]; NaN and infinities never reach the kernels.
  double positive_double(std::string_view key, double max) const {
    const Json* v = find(key);
    if (!v) missing(key);
    if (!v->is_number()) bad(key, str_cat("must be a number, got ", show(*v)));
    double x = v->get<double>();
    if (!std::isfinite(x) || !(x > 0.0)) bad(key, str_cat("must be positive, got ", show(*v)));
    if (x > max) bad(key, str_cat("is ", show(*v), ", over the limit of ", max));
    return x;
  }
  double positive_double(std::string_view key, double max, double fallback) const {
    return has(key) ? positive_double(key, max) : fallback;
  }

  bool boolean(std::string_view key, bool fallback) const {
    const Json* v = find(key);
    if (!v) return fallback;
    if (!v->is_boolean()) bad(key, str_cat("must be true or false, got ", show(*v)));
    return v->get<bool>();
  }

  std::optional<std::string> string(std::string_view key) const {
    const Json* v = find(key);
    if (!v) return std::nullopt;
    if (!v->is_string()) bad(key, str_cat("must be a string, got ", show(*v)));
    return v->get<std::string>();
  }

  // A token id, or a list of them (eos_token_id is either).
  std::vector<int32_t> token_ids(std::string_view key) const {
    const Json* v = find(key);
    std::vector<int32_t> ids;
    if (!v) return ids;
    auto one = [&](const Json& x) {
      int64_t id = int_value(key, x);
      if (id < 0) bad(key, str_cat("holds a negative token id ", id));
      ids.push_back(static_cast<int32_t>(id));
    };
    if (v->is_array()) {
      // Every generated token is compared with each of them.
      if (v->size() > kMaxEosTokenIds) {
        bad(key, str_cat("lists ", v->size(), " token ids; at most ", kMaxEosTokenIds,
                         " are supported"));
      }
      for (const Json& x : *v) one(x);
    } else if (v->is_number_integer()) {
      one(*v);
    } else {
      bad(key, str_cat("must be a token id or a list of them, got ", show(*v)));
    }
    return ids;
  }

  const std::string& path() const { return path_; }

 private:
  const Json& obj_;
  const std::string& path_;
  std::string prefix_;
};

const ArchInfo& resolve_arch(const Fields& f) {
  const ArchInfo* by_class = nullptr;
  const ArchInfo* by_type = nullptr;
  std::string class_name;
  if (const Json* archs = f.find("architectures")) {
    if (!archs->is_array() || archs->empty() || !(*archs)[0].is_string()) {
      f.bad("architectures",
            str_cat("must be a non-empty list of class names, got ", show(*archs)));
    }
    class_name = (*archs)[0].get<std::string>();
    for (const ArchInfo& a : kArchs) {
      if (a.class_name == class_name) by_class = &a;
    }
    if (!by_class) {
      fail(f.path(), ": unsupported architecture '", printable(class_name),
           "' (field 'architectures'); supported: ", supported_classes());
    }
  }
  if (std::optional<std::string> type = f.string("model_type")) {
    for (const ArchInfo& a : kArchs) {
      if (a.model_type == *type) by_type = &a;
    }
    if (!by_type) {
      fail(f.path(), ": unsupported model_type '", printable(*type),
           "' (field 'model_type'); supported: ", supported_model_types());
    }
  }
  if (by_class && by_type && by_class != by_type) {
    fail(f.path(), ": field 'architectures' says ", by_class->class_name,
         " but field 'model_type' says '", by_type->model_type, "'");
  }
  if (by_class) return *by_class;
  if (by_type) return *by_type;
  fail(f.path(), ": neither 'architectures' nor 'model_type' is set; supported architectures: ",
       supported_classes());
}

// Reads RoPE settings: transformers 5.x keeps everything in `rope_parameters`; 4.x has a top-level
// `rope_theta` and an optional `rope_scaling` whose type is `rope_type` (or legacy `type`).
RopeParams parse_rope(const Json& j, const std::string& path) {
  Fields top(j, path);
  RopeParams rope;
  rope.theta = top.positive_double("rope_theta", kMaxRopeTheta, rope.theta);

  std::string_view section = "rope_parameters";
  const Json* params = top.find(section);
  if (!params) {
    section = "rope_scaling";
    params = top.find(section);
  }
  if (!params) return rope;
  if (!params->is_object()) top.bad(section, str_cat("must be an object, got ", show(*params)));

  Fields p(*params, path, str_cat(section, "."));
  rope.theta = p.positive_double("rope_theta", kMaxRopeTheta, rope.theta);
  std::string_view type_key = p.has("rope_type") ? "rope_type" : "type";
  std::optional<std::string> type = p.string(type_key);
  if (!type) {
    for (const auto& [key, value] : params->items()) {
      if (value.is_object()) {
        fail(path, ": field '", section, ".", key,
             "' holds per-layer-type RoPE parameters, which are not supported");
      }
    }
    type = "default";
  }
  if (*type == "default") {
    rope.type = "default";
  } else if (*type == "linear") {
    rope.type = "linear";
    rope.factor = p.positive_double("factor", kMaxRopeFactor);
  } else if (*type == "llama3") {
    rope.type = "llama3";
    rope.factor = p.positive_double("factor", kMaxRopeFactor);
    rope.low_freq_factor = p.positive_double("low_freq_factor", kMaxRopeFactor);
    rope.high_freq_factor = p.positive_double("high_freq_factor", kMaxRopeFactor);
    rope.original_max_position_embeddings =
        p.positive_int("original_max_position_embeddings", kMaxPositionEmbeddings);
    if (rope.high_freq_factor <= rope.low_freq_factor) {
      fail(path, ": field '", p.name("high_freq_factor"), "' (", rope.high_freq_factor,
           ") must be greater than '", p.name("low_freq_factor"), "' (", rope.low_freq_factor, ")");
    }
  } else {
    p.bad(type_key, str_cat("is '", printable(*type),
                            "', which is not supported; supported: ", kSupportedRopeTypes));
  }
  return rope;
}

DType parse_checkpoint_dtype(const Fields& f) {
  std::string_view key = f.has("dtype") ? "dtype" : "torch_dtype";
  std::optional<std::string> name = f.string(key);
  if (!name) return DType::kF32;  // transformers loads a config without a dtype as float32
  DType t;
  if (!parse_dtype(*name, &t) || (t != DType::kF32 && t != DType::kF16 && t != DType::kBF16)) {
    f.bad(key, str_cat("is '", printable(*name), "'; supported: bfloat16, float16, float32"));
  }
  return t;
}

// Rejects settings that would change the computation in ways Vortex does not implement, rather
// than silently running a different model.
void reject_unsupported_features(const Fields& f) {
  if (std::optional<std::string> act = f.string("hidden_act"); act && *act != "silu") {
    f.bad("hidden_act", str_cat("is '", printable(*act), "'; only 'silu' is supported"));
  }
  if (f.boolean("mlp_bias", false)) f.bad("mlp_bias", "is true; MLP biases are not supported");
  if (f.boolean("use_sliding_window", false)) {
    f.bad("use_sliding_window", "is true; sliding-window attention is not supported");
  }
  if (const Json* types = f.find("layer_types")) {
    if (!types->is_array()) f.bad("layer_types", str_cat("must be a list, got ", show(*types)));
    for (const Json& t : *types) {
      if (!t.is_string() || t.get<std::string>() != "full_attention") {
        f.bad("layer_types",
              str_cat("contains ", show(t), "; only \"full_attention\" is supported"));
      }
    }
  }
}

void check_token_ids(const Fields& f, std::string_view key, const std::vector<int32_t>& ids,
                     int32_t vocab_size) {
  for (int32_t id : ids) {
    if (id >= vocab_size) {
      f.bad(key, str_cat("holds token id ", id, ", outside the vocabulary (vocab_size ", vocab_size,
                         ")"));
    }
  }
}

}  // namespace

std::string_view arch_name(Arch arch) {
  for (const ArchInfo& a : kArchs) {
    if (a.arch == arch) return a.model_type;
  }
  return "?";
}

ModelConfig parse_model_config(const Json& j, const std::string& path) {
  if (!j.is_object()) fail(path, ": expected a JSON object, got ", j.type_name());
  Fields f(j, path);
  ModelConfig c;
  const ArchInfo& arch = resolve_arch(f);
  c.arch = arch.arch;
  c.architecture = std::string(arch.class_name);
  reject_unsupported_features(f);

  c.vocab_size = f.positive_int("vocab_size", kMaxVocabSize);
  c.hidden_size = f.positive_int("hidden_size", kMaxHiddenSize);
  c.intermediate_size = f.positive_int("intermediate_size", kMaxIntermediateSize);
  c.num_layers = f.positive_int("num_hidden_layers", kMaxLayers);
  c.num_heads = f.positive_int("num_attention_heads", kMaxHeads);
  c.num_kv_heads = f.optional_positive_int("num_key_value_heads", kMaxHeads).value_or(c.num_heads);
  if (c.num_heads % c.num_kv_heads != 0) {
    fail(path, ": field 'num_attention_heads' (", c.num_heads,
         ") must be a multiple of field 'num_key_value_heads' (", c.num_kv_heads, ")");
  }
  if (std::optional<int32_t> head_dim = f.optional_positive_int("head_dim", kMaxHeadDim)) {
    c.head_dim = *head_dim;
  } else {
    if (c.hidden_size % c.num_heads != 0) {
      fail(path, ": field 'head_dim' is absent and hidden_size ", c.hidden_size,
           " is not divisible by num_attention_heads ", c.num_heads);
    }
    c.head_dim = c.hidden_size / c.num_heads;
  }
  if (c.head_dim % 2 != 0) {
    f.bad("head_dim", str_cat("is ", c.head_dim, "; RoPE needs an even head dimension"));
  }
  // Both factors are capped, so the product is exact in int64; q_dim() and kv_dim() (int32) are
  // then safe, and kv_dim <= q_dim because the KV heads divide the heads.
  if (const int64_t q_dim = int64_t{c.num_heads} * c.head_dim; q_dim > kMaxAttentionDim) {
    fail(path, ": num_attention_heads (", c.num_heads, ") * head_dim (", c.head_dim, ") = ", q_dim,
         " is over the limit of ", kMaxAttentionDim);
  }
  c.rms_norm_eps = f.positive_double("rms_norm_eps", kMaxRmsNormEps);
  c.max_position_embeddings = f.positive_int("max_position_embeddings", kMaxPositionEmbeddings);
  c.rope = parse_rope(j, path);
  // Both Qwen3Config and LlamaConfig default to untied; Qwen3's small models say `true` explicitly.
  c.tie_word_embeddings = f.boolean("tie_word_embeddings", false);
  c.attention_bias = f.boolean("attention_bias", false);
  c.dtype = parse_checkpoint_dtype(f);

  if (const Json* bos = f.find("bos_token_id")) {
    int64_t id = f.int_value("bos_token_id", *bos);
    if (id < 0) f.bad("bos_token_id", str_cat("must not be negative, got ", id));
    c.bos_token_id = static_cast<int32_t>(id);
    check_token_ids(f, "bos_token_id", {*c.bos_token_id}, c.vocab_size);
  }
  c.eos_token_ids = f.token_ids("eos_token_id");
  check_token_ids(f, "eos_token_id", c.eos_token_ids, c.vocab_size);
  return c;
}

ModelConfig load_model_config(const std::string& dir) {
  namespace fs = std::filesystem;
  std::string config_path = (fs::path(dir) / "config.json").string();
  ModelConfig c = parse_model_config(read_json_file(config_path), config_path);

  std::string gen_path = (fs::path(dir) / "generation_config.json").string();
  if (!fs::exists(gen_path)) return c;
  Json gen = read_json_file(gen_path);
  if (!gen.is_object()) fail(gen_path, ": expected a JSON object, got ", gen.type_name());
  Fields g(gen, gen_path);
  std::vector<int32_t> eos = g.token_ids("eos_token_id");
  check_token_ids(g, "eos_token_id", eos, c.vocab_size);
  for (int32_t id : c.eos_token_ids) {
    if (std::find(eos.begin(), eos.end(), id) == eos.end()) eos.push_back(id);
  }
  c.eos_token_ids = std::move(eos);
  if (!c.bos_token_id) {
    if (const Json* bos = g.find("bos_token_id")) {
      int64_t id = g.int_value("bos_token_id", *bos);
      if (id < 0) g.bad("bos_token_id", str_cat("must not be negative, got ", id));
      check_token_ids(g, "bos_token_id", {static_cast<int32_t>(id)}, c.vocab_size);
      c.bos_token_id = static_cast<int32_t>(id);
    }
  }
  return c;
}

Json model_config_to_json(const ModelConfig& c) {
  Json j = Json::object();
  j["architectures"] = Json::array({c.architecture});
  j["model_type"] = std::string(arch_name(c.arch));
  j["vocab_size"] = c.vocab_size;
  j["hidden_size"] = c.hidden_size;
  j["intermediate_size"] = c.intermediate_size;
  j["num_hidden_layers"] = c.num_layers;
  j["num_attention_heads"] = c.num_heads;
  j["num_key_value_heads"] = c.num_kv_heads;
  j["head_dim"] = c.head_dim;
  j["hidden_act"] = "silu";
  j["rms_norm_eps"] = c.rms_norm_eps;
  j["max_position_embeddings"] = c.max_position_embeddings;
  j["rope_theta"] = c.rope.theta;
  if (c.rope.type == "default") {
    j["rope_scaling"] = nullptr;
  } else {
    Json s = {{"rope_type", c.rope.type}, {"factor", c.rope.factor}};
    if (c.rope.type == "llama3") {
      s["low_freq_factor"] = c.rope.low_freq_factor;
      s["high_freq_factor"] = c.rope.high_freq_factor;
      s["original_max_position_embeddings"] = c.rope.original_max_position_embeddings;
    }
    j["rope_scaling"] = s;
  }
  j["tie_word_embeddings"] = c.tie_word_embeddings;
  j["attention_bias"] = c.attention_bias;
  switch (c.dtype) {
    case DType::kF16:
      j["torch_dtype"] = "float16";
      break;
    case DType::kF32:
      j["torch_dtype"] = "float32";
      break;
    default:
      j["torch_dtype"] = "bfloat16";
      break;
  }
  if (c.bos_token_id) j["bos_token_id"] = *c.bos_token_id;
  if (c.eos_token_ids.size() == 1) {
    j["eos_token_id"] = c.eos_token_ids[0];
  } else if (!c.eos_token_ids.empty()) {
    j["eos_token_id"] = c.eos_token_ids;
  }
  return j;
}

}  // namespace vortex
