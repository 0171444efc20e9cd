#include "engine/cuda/cuda_backend.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "kernels/cpu/rope.h"
#include "kernels/cuda/attention.h"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/qkv_rope.h"
#include "kernels/cuda/sampling.h"

namespace vortex {

using cuda::bf16_t;

namespace {

cuda::DecodeKernel to_decode_kernel(const RunnerOptions& options) {
  switch (options.decode_kernel) {
    case RunnerOptions::DecodeKernel::kMma3:
      return cuda::DecodeKernel::kMma3;
    case RunnerOptions::DecodeKernel::kMma4:
      return cuda::DecodeKernel::kMma4;
    case RunnerOptions::DecodeKernel::kScalar:
      return cuda::DecodeKernel::kScalar;
  }
  return cuda::DecodeKernel::kMma3;
}

// Layer l of the cache as the attention and summarize kernels read it.
cuda::DevicePagedKv paged_kv(const CudaKvCache& cache, int32_t l) {
  const KvGeometry& g = cache.geometry();
  cuda::DevicePagedKv kv;
  kv.k = cache.k_layer(l);
  kv.v = cache.v_layer(l);
  kv.page_size = g.page_size;
  kv.num_kv_heads = g.num_kv_heads;
  kv.head_dim = g.head_dim;
  kv.page_stride = cache.page_stride();
  kv.head_stride = cache.head_stride();
  return kv;
}

}  // namespace

CudaBackend::CudaBackend(const ModelConfig& config, const ModelWeights& weights,
                         const CudaKvCache& cache, cudaStream_t stream,
                         const RunnerOptions& options)
    : cfg_(config), cache_(cache), stream_(stream), decode_kernel_(to_decode_kernel(options)) {
  gemm_ = std::make_unique<Gemm>(options.gemm == RunnerOptions::Gemm::kSkinny);
  w_ = upload_weights(weights);
  const std::vector<float> freq = cpu::rope_inv_freq(cfg_.head_dim, cfg_.rope);
  inv_freq_ = DeviceBuffer(freq.size() * sizeof(float), "rope frequencies");
  check_cuda(cudaMemcpy(inv_freq_.data(), freq.data(), freq.size() * sizeof(float),
                        cudaMemcpyHostToDevice),
             "rope upload");
}

bool CudaBackend::ensure_capacity(int64_t T, int64_t S, size_t ws) {
  if (T <= t_cap_ && S <= s_cap_ && ws <= ws_cap_) return false;
  if (T > t_cap_) {
    t_cap_ = std::max<int64_t>(T, t_cap_ * 2);
    const int64_t H = cfg_.hidden_size, I = cfg_.intermediate_size;
    const int64_t qd = cfg_.q_dim(), qkv_dim = qd + 2 * int64_t{cfg_.kv_dim()};
    x_ = DeviceBuffer(t_cap_ * H * 4, "activations");
    h_ = DeviceBuffer(t_cap_ * H * 2, "activations");
    qkv_ = DeviceBuffer(t_cap_ * qkv_dim * 4, "activations");
    q_ = DeviceBuffer(t_cap_ * qd * 2, "activations");
    attn_ = DeviceBuffer(t_cap_ * qd * 2, "activations");
    delta_ = DeviceBuffer(t_cap_ * H * 4, "activations");
    gate_up_ = DeviceBuffer(t_cap_ * 2 * I * 4, "activations");
    act_ = DeviceBuffer(t_cap_ * I * 2, "activations");
  }
  if (S > s_cap_) {
    s_cap_ = std::max<int64_t>(S, s_cap_ * 2);
    const int64_t V = cfg_.vocab_size;
    hs_ = DeviceBuffer(s_cap_ * cfg_.hidden_size * 2, "sampling rows");
    logits_ = DeviceBuffer(s_cap_ * V * 4, "logits");
    sample_scratch_ = DeviceBuffer(s_cap_ * V * 4, "sampling scratch");
    results_ = DeviceBuffer(s_cap_ * sizeof(cuda::SampleResult), "sampled tokens");
  }
  if (ws > ws_cap_) {
    ws_cap_ = std::max(ws, ws_cap_ * 2);
    workspace_ = DeviceBuffer(ws_cap_, "attention workspace");
  }
  return true;
}

void CudaBackend::bind(const StepShape& shape, const StepMetadata& meta, CudaSparseFlows* sparse,
                       StepTimeline* timeline) {
  shape_ = shape;
  meta_ = &meta;
  sparse_ = sparse;
  timeline_ = timeline;
  sparse_meta_ = sparse ? meta.sparse_meta(shape) : SparseStepMeta{};
}

const float* CudaBackend::logits_row(int64_t i) const {
  return logits_.as<float>() + i * cfg_.vocab_size;
}

void CudaBackend::begin(StepPart part) {
  if (timeline_) timeline_->begin(part, stream_);
}

void CudaBackend::end() {
  if (timeline_) timeline_->end(stream_);
}

void CudaBackend::embed() {
  VORTEX_ASSERT(meta_ != nullptr);
  const MetaLayout& l = meta_->layout();
  check_cuda(cuda::embedding(meta_->at<int32_t>(l.tokens), shape_.T, w_.embed.as<bf16_t>(),
                             cfg_.vocab_size, cfg_.hidden_size, x_.as<float>(), stream_),
             "embedding");
  delta_pending_ = false;
  delta_bias_ = nullptr;
  if (sparse_) {
    begin(kPartPlan);
    sparse_->enqueue_plan(sparse_meta_, stream_);
    end();
  }
}

void CudaBackend::add_rms_norm(int32_t l, LayerTensor norm) {
  const DeviceLayerWeights& lw = layer(l);
  const DeviceBuffer& weight =
      norm == LayerTensor::kInputNorm ? lw.input_norm : lw.post_attention_norm;
  VORTEX_ASSERT(norm == LayerTensor::kInputNorm || norm == LayerTensor::kPostAttentionNorm);
  check_cuda(
      cuda::residual_rms_norm(x_.as<float>(), delta_pending_ ? delta_.as<float>() : nullptr,
                              delta_pending_ ? delta_bias_ : nullptr, nullptr, shape_.T,
                              cfg_.hidden_size, weight.as<bf16_t>(),
                              static_cast<float>(cfg_.rms_norm_eps), h_.as<bf16_t>(), stream_),
      "rms norm");
  delta_pending_ = false;
  delta_bias_ = nullptr;
}

void CudaBackend::linear(int32_t l, Projection projection) {
  const DeviceLayerWeights& lw = layer(l);
  const int64_t T = shape_.T, H = cfg_.hidden_size, I = cfg_.intermediate_size;
  switch (projection) {
    case Projection::kQkv:  // the biases are added by qkv_rope_append
      gemm_->f32_out(h_.as<bf16_t>(), T, H, lw.qkv.as<bf16_t>(),
                     cfg_.q_dim() + 2 * int64_t{cfg_.kv_dim()}, qkv_.as<float>(), stream_);
      return;
    case Projection::kOutput:
      gemm_->f32_out(attn_.as<bf16_t>(), T, cfg_.q_dim(), lw.o_proj.as<bf16_t>(), H,
                     delta_.as<float>(), stream_);
      delta_pending_ = true;
      delta_bias_ = lw.o_bias.as<bf16_t>();
      return;
    case Projection::kGateUp:
      gemm_->f32_out(h_.as<bf16_t>(), T, H, lw.gate_up.as<bf16_t>(), 2 * I, gate_up_.as<float>(),
                     stream_);
      return;
    case Projection::kDown:
      gemm_->f32_out(act_.as<bf16_t>(), T, I, lw.down.as<bf16_t>(), H, delta_.as<float>(), stream_);
      delta_pending_ = true;
      delta_bias_ = nullptr;
      return;
  }
}

void CudaBackend::qkv_rope_append(int32_t l, bool qk_norm) {
  const DeviceLayerWeights& lw = layer(l);
  const MetaLayout& ml = meta_->layout();
  const cuda::DevicePagedKv kv = paged_kv(cache_, l);
  VORTEX_ASSERT(!qk_norm || (lw.q_norm.data() && lw.k_norm.data()));
  cuda::QkvRopeArgs ra;
  ra.qkv = qkv_.as<float>();
  ra.bias = lw.qkv_bias.as<bf16_t>();
  ra.q_norm = qk_norm ? lw.q_norm.as<bf16_t>() : nullptr;
  ra.k_norm = qk_norm ? lw.k_norm.as<bf16_t>() : nullptr;
  ra.inv_freq = inv_freq_.as<float>();
  ra.positions = meta_->at<int32_t>(ml.positions);
  ra.kv_pages = meta_->at<int32_t>(ml.kv_pages);
  ra.kv_slots = meta_->at<int32_t>(ml.kv_slots);
  ra.num_tokens = shape_.T;
  ra.num_q_heads = cfg_.num_heads;
  ra.num_kv_heads = cfg_.num_kv_heads;
  ra.head_dim = cfg_.head_dim;
  ra.eps = static_cast<float>(cfg_.rms_norm_eps);
  ra.q_out = q_.as<bf16_t>();
  ra.k_cache = cache_.k_layer(l);
  ra.v_cache = cache_.v_layer(l);
  ra.page_stride = kv.page_stride;
  ra.head_stride = kv.head_stride;
  check_cuda(cuda::qkv_rope_append(ra, stream_), "qkv/rope/append");
}

void CudaBackend::flow_summarize(int32_t l) {
  // Pages that became full in this step are summarized here, per layer, or once after the last
  // layer for every sparse layer (no score of this step reads them: see
  // CudaFlowSelector::defers_summarize).
  if (sparse_ && sparse_->is_sparse_layer(l) && sparse_->summarizes_after_layer(l)) {
    begin(kPartSummarize);
    sparse_->enqueue_summarize_after_layer(l, paged_kv(cache_, l), sparse_meta_, stream_);
    end();
  }
}

void CudaBackend::attention(int32_t l) {
  const int32_t Hq = cfg_.num_heads, Hkv = cfg_.num_kv_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(cfg_.head_dim));
  const MetaLayout& ml = meta_->layout();
  const cuda::DevicePagedKv kv = paged_kv(cache_, l);
  if (shape_.decode_seqs > 0) {
    cuda::DecodeAttentionArgs da;
    da.q = q_.as<bf16_t>();
    da.out = attn_.as<bf16_t>();
    da.q_rows = meta_->at<int32_t>(ml.q_rows);
    da.row_page_offset = meta_->at<int32_t>(ml.row_page_offset);
    da.row_num_tokens = meta_->at<int32_t>(ml.row_num_tokens);
    da.pages = meta_->at<int32_t>(ml.pages);
    da.num_seqs = shape_.decode_seqs;
    da.num_q_heads = Hq;
    da.num_splits = shape_.splits;
    da.scale = scale;
    da.workspace = workspace_.as<float>();
    da.kernel = decode_kernel_;
    const bool sparse_layer = sparse_ && sparse_->is_sparse_layer(l);
    if (sparse_layer) {
      // Each flow sparse here writes its rows' page lists; the others' rows were given their
      // dense lists (CudaSparseFlows).
      for (const size_t f : sparse_->flows_at(l)) {
        begin(kPartScore);
        sparse_->enqueue_score(f, l, reinterpret_cast<const uint16_t*>(q_.as<bf16_t>()), Hq,
                               sparse_meta_, stream_);
        end();
        // A fused score-and-select kernel selects in the score part.
        const bool fused = sparse_->fuses_select(f, sparse_meta_.decode_seqs * Hkv);
        if (!fused) begin(kPartSelect);
        sparse_->enqueue_select(f, l, sparse_meta_, stream_);
        if (!fused) end();
      }
      const SelectedPageLists lists = sparse_->lists(l);
      da.row_page_offset = lists.row_page_offset;
      da.row_num_tokens = lists.num_tokens;
      da.pages = lists.pages;
      da.num_splits = shape_.sparse_splits;
    }
    begin(sparse_layer ? kPartSparseAttention : kPartDenseAttention);
    check_cuda(cuda::decode_attention(da, kv, stream_), "decode attention");
    end();
  }
  if (shape_.prefill_blocks > 0) {
    cuda::PrefillAttentionArgs pa;
    pa.q = q_.as<bf16_t>();
    pa.out = attn_.as<bf16_t>();
    pa.block_seq = meta_->at<int32_t>(ml.block_seq);
    pa.block_q_start = meta_->at<int32_t>(ml.block_q_start);
    pa.seq_q_begin = meta_->at<int32_t>(ml.seq_q_begin);
    pa.seq_q_len = meta_->at<int32_t>(ml.seq_q_len);
    pa.seq_kv_len = meta_->at<int32_t>(ml.seq_kv_len);
    pa.seq_page_offset = meta_->at<int32_t>(ml.seq_page_offset);
    pa.pages = meta_->at<int32_t>(ml.pages);
    pa.num_blocks = shape_.prefill_blocks;
    pa.num_q_heads = Hq;
    pa.scale = scale;
    check_cuda(cuda::prefill_attention(pa, kv, stream_), "prefill attention");
  }
}

void CudaBackend::swiglu() {
  check_cuda(cuda::swiglu(gate_up_.as<float>(), shape_.T, cfg_.intermediate_size, act_.as<bf16_t>(),
                          stream_),
             "swiglu");
}

void CudaBackend::logits() {
  if (sparse_ && sparse_->summarizes_after_step()) {
    begin(kPartSummarize);
    sparse_->enqueue_summarize_after_step(paged_kv(cache_, 0), cache_.layer_stride(), sparse_meta_,
                                          stream_);
    end();
  }
  // Only the rows that sample need the final norm and the vocabulary projection.
  const MetaLayout& ml = meta_->layout();
  check_cuda(cuda::residual_rms_norm(
                 x_.as<float>(), delta_pending_ ? delta_.as<float>() : nullptr,
                 delta_pending_ ? delta_bias_ : nullptr, meta_->at<int32_t>(ml.sample_rows),
                 shape_.S, cfg_.hidden_size, w_.final_norm.as<bf16_t>(),
                 static_cast<float>(cfg_.rms_norm_eps), hs_.as<bf16_t>(), stream_),
             "final norm");
  delta_pending_ = false;
  gemm_->f32_out(hs_.as<bf16_t>(), shape_.S, cfg_.hidden_size, w_.lm_head(), cfg_.vocab_size,
                 logits_.as<float>(), stream_);
}

void CudaBackend::sample() {
  const MetaLayout& ml = meta_->layout();
  check_cuda(
      cuda::sample_tokens(logits_.as<float>(), shape_.S, cfg_.vocab_size,
                          meta_->at<cuda::SampleParams>(ml.params), sample_scratch_.as<float>(),
                          results_.as<cuda::SampleResult>(), stream_),
      "sampling");
}

}  // namespace vortex
