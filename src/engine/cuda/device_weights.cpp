#include "engine/cuda/device_weights.h"

#include <cstring>
#include <string>

#include "core/error.h"
#include "core/thread_pool.h"

namespace vortex {
namespace {

// The tensors, in order, as one bf16 array on the device (rows of matrices with the same
// number of columns simply follow each other).
DeviceBuffer upload(const std::vector<const Tensor*>& parts, const std::string& what) {
  size_t total = 0;
  for (const Tensor* t : parts) total += static_cast<size_t>(t->numel());
  std::vector<uint16_t> host(total);
  size_t at = 0;
  for (const Tensor* t : parts) {
    const size_t n = static_cast<size_t>(t->numel());
    uint16_t* dst = host.data() + at;
    if (t->dtype() == DType::kBF16) {
      std::memcpy(dst, t->data(), n * sizeof(uint16_t));
    } else {
      const DType dt = t->dtype();
      if (dt != DType::kF32 && dt != DType::kF16)
        fail(what, ": weight has dtype ", dtype_name(dt), ", expected f32, bf16 or f16");
      const void* src = t->data();
      ThreadPool::global().parallel_for(
          static_cast<int64_t>(n), 1 << 16, [&](int64_t begin, int64_t end) {
            std::vector<float> buf(static_cast<size_t>(end - begin));
            const size_t esz = dtype_size(dt);
            convert_to_f32(dt, static_cast<const char*>(src) + begin * esz, buf.data(), buf.size());
            for (int64_t i = begin; i < end; ++i) dst[i] = f32_to_bf16(buf[i - begin]);
          });
    }
    at += n;
  }
  DeviceBuffer d(total * sizeof(uint16_t), what.c_str());
  check_cuda(cudaMemcpy(d.data(), host.data(), total * sizeof(uint16_t), cudaMemcpyHostToDevice),
             "weight upload");
  return d;
}

}  // namespace

size_t DeviceWeights::bytes() const {
  size_t b = embed.bytes() + final_norm.bytes() + lm_head_own.bytes();
  for (const DeviceLayerWeights& l : layers) {
    b += l.input_norm.bytes() + l.post_attention_norm.bytes() + l.qkv.bytes() + l.qkv_bias.bytes() +
         l.q_norm.bytes() + l.k_norm.bytes() + l.o_proj.bytes() + l.o_bias.bytes() +
         l.gate_up.bytes() + l.down.bytes();
  }
  return b;
}

DeviceWeights upload_weights(const ModelWeights& w) {
  DeviceWeights d;
  d.embed = upload({&w.embed_tokens}, "embed_tokens");
  d.final_norm = upload({&w.final_norm}, "final norm");
  if (w.lm_head.data() != w.embed_tokens.data()) d.lm_head_own = upload({&w.lm_head}, "lm_head");
  using enum LayerTensor;
  for (size_t i = 0; i < w.layers.size(); ++i) {
    const LayerWeights& l = w.layers[i];
    const std::string name = "layer " + std::to_string(i);
    DeviceLayerWeights dl;
    dl.input_norm = upload({&l[kInputNorm]}, name + " input norm");
    dl.post_attention_norm = upload({&l[kPostAttentionNorm]}, name + " post-attention norm");
    dl.qkv = upload({&l[kQProj], &l[kKProj], &l[kVProj]}, name + " qkv");
    if (l[kQBias].defined())
      dl.qkv_bias = upload({&l[kQBias], &l[kKBias], &l[kVBias]}, name + " qkv bias");
    if (l[kQNorm].defined()) {
      dl.q_norm = upload({&l[kQNorm]}, name + " q norm");
      dl.k_norm = upload({&l[kKNorm]}, name + " k norm");
    }
    dl.o_proj = upload({&l[kOProj]}, name + " o_proj");
    if (l[kOBias].defined()) dl.o_bias = upload({&l[kOBias]}, name + " o_proj bias");
    dl.gate_up = upload({&l[kGateProj], &l[kUpProj]}, name + " gate|up");
    dl.down = upload({&l[kDownProj]}, name + " down");
    d.layers.push_back(std::move(dl));
  }
  return d;
}

}  // namespace vortex
