#include "engine/cuda/cuda_model_runner.h"

#include <cuda_profiler_api.h>

#include <algorithm>

#include "core/cuda/cuda_util.h"
#include "core/error.h"
#include "engine/cuda/cuda_backend.h"
#include "engine/cuda/cuda_sparse_flows.h"
#include "engine/cuda/graph_cache.h"
#include "engine/cuda/step_plan.h"
#include "engine/cuda/step_timeline.h"
#include "kernels/cuda/attention.h"
#include "kernels/cuda/sampling.h"
#include "kv/cuda/cuda_kv_cache.h"
#include "model/architecture.h"

namespace vortex {
namespace {

// Checks for a usable GPU and a model the kernels support before the first allocation, so that
// either gets a clear error.
const KvGeometry& checked_geometry(const KvGeometry& geometry, const ModelConfig& cfg) {
  require_cuda_device();
  VORTEX_ASSERT(geometry.num_layers == cfg.num_layers &&
                geometry.num_kv_heads == cfg.num_kv_heads && geometry.head_dim == cfg.head_dim);
  if (cfg.head_dim % 8 != 0 || cfg.head_dim > 128)
    fail("--device cuda supports head_dim a multiple of 8 up to 128, the model has ", cfg.head_dim);
  if (cfg.group_size() > 16)
    fail("--device cuda supports up to 16 query heads per KV head, the model has ",
         cfg.group_size());
  return geometry;
}

}  // namespace

struct CudaModelRunner::Impl {
  Impl(const LoadedModel& model, const KvGeometry& geometry, int32_t num_pages,
       const RunnerOptions& options);
  ~Impl();

  std::vector<SampledToken> step(const std::vector<ScheduledWork>& work,
                                 const std::vector<SamplingRow>& rows);
  StepShape bucket_shape(int32_t bucket) const;
  StepShape eager_shape() const;
  size_t workspace_bytes(const StepShape& shape) const;
  void capture_decode_graphs(int32_t max_batch, int32_t max_step_tokens);
  // Room for steps of T tokens, S sampling rows, `pages` page-list entries and `ws` bytes of
  // attention workspace; reallocating drops the graphs (they hold the old addresses).
  void ensure_capacity(int64_t T, int64_t S, int64_t pages, size_t ws);
  void lay_out_metadata();
  // The step as the architecture describes it, over the backend's ops (what a graph captures).
  void enqueue_forward(const StepShape& shape, StepTimeline* timeline = nullptr);
  void add_profile(const StepTimeline& timeline, const StepShape& shape);
  void clear_graphs();

  const ModelConfig& cfg;
  const Architecture& arch;
  KvGeometry geo;
  int32_t num_pages;  // the cache's scratch page (for padded graph rows) is page num_pages
  RunnerOptions opt;
  cudaStream_t stream = nullptr;
  CudaKvCache kv;
  std::unique_ptr<CudaBackend> backend;
  int64_t pages_cap = 0;
  StepMetadata meta;
  PinnedBuffer results_h;
  StepPlan plan;
  GraphCache graphs;
  // Logits of the rows that ask for top logprobs this step, [asking rows, vocab] (a step where
  // no row asks copies nothing).
  std::vector<float> top_logits_host;
  Stats stats;

  std::unique_ptr<CudaSparseFlows> sparse;
  int64_t pure_decode_steps = 0;
  int64_t steps_run = 0;
};

CudaModelRunner::Impl::Impl(const LoadedModel& model, const KvGeometry& geometry, int32_t pages,
                            const RunnerOptions& options)
    : cfg(model.config),
      arch(architecture_of(model.config.arch)),
      geo(geometry),
      num_pages(pages),
      opt(options),
      kv(checked_geometry(geometry, model.config), pages) {
  check_cuda(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
  backend = std::make_unique<CudaBackend>(cfg, model.weights, kv, stream, opt);
  ensure_capacity(256, 64, 4096, 0);
}

CudaModelRunner::Impl::~Impl() {
  clear_graphs();
  if (stream) cudaStreamDestroy(stream);
}

void CudaModelRunner::Impl::clear_graphs() {
  graphs.clear();
}

void CudaModelRunner::Impl::ensure_capacity(int64_t T, int64_t S, int64_t pages, size_t ws) {
  if (T <= backend->token_capacity() && S <= backend->sample_capacity() && pages <= pages_cap &&
      ws <= backend->workspace_capacity())
    return;
  check_cuda(cudaStreamSynchronize(stream), "synchronize before reallocation");
  clear_graphs();  // graphs hold the old addresses
  const int64_t old_s = backend->sample_capacity();
  backend->ensure_capacity(T, S, ws);
  if (backend->sample_capacity() > old_s)
    results_h = PinnedBuffer(backend->sample_capacity() * sizeof(cuda::SampleResult));
  if (pages > pages_cap) pages_cap = std::max<int64_t>(pages, pages_cap * 2);
  lay_out_metadata();
}

void CudaModelRunner::Impl::lay_out_metadata() {
  const int64_t t_cap = backend->token_capacity();
  meta.lay_out(MetaLayout(t_cap, backend->sample_capacity(), t_cap * cfg.num_kv_heads, pages_cap,
                          sparse ? static_cast<int64_t>(sparse->num_mode_lists()) : 0));
}

void CudaModelRunner::Impl::enqueue_forward(const StepShape& shape, StepTimeline* timeline) {
  backend->bind(shape, meta, sparse.get(), timeline);
  arch.forward(cfg, *backend);
}

// The shape of a decode-only step padded to `bucket` sequences: what its CUDA graph is made
// for, whatever the rows hold (attention splits sized for rows of the whole context).
StepShape CudaModelRunner::Impl::bucket_shape(int32_t bucket) const {
  const int32_t D = cfg.head_dim, Hkv = cfg.num_kv_heads, G = cfg.group_size();
  StepShape shape;
  shape.T = shape.S = shape.decode_seqs = bucket;
  shape.splits = cuda::decode_attention_num_splits(
      int64_t{bucket} * Hkv, cfg.max_position_embeddings, D, G, backend->decode_kernel());
  if (opt.decode_splits > 0) shape.splits = opt.decode_splits;
  if (sparse) {
    // Sparse layers read at most the budget of a row of the whole context.
    shape.sparse_splits = cuda::decode_attention_num_splits(
        int64_t{bucket} * Hkv, sparse->max_selected_tokens(cfg.max_position_embeddings), D, G,
        backend->decode_kernel());
    if (opt.sparse_splits > 0) shape.sparse_splits = opt.sparse_splits;
    shape.max_summarize = bucket;
  }
  return shape;
}

// The shape of the planned step run eagerly (no graph): sized for what it holds.
StepShape CudaModelRunner::Impl::eager_shape() const {
  const int32_t D = cfg.head_dim, Hkv = cfg.num_kv_heads, G = cfg.group_size();
  StepShape shape;
  shape.T = static_cast<int32_t>(plan.tokens.size());
  shape.S = static_cast<int32_t>(plan.sample_rows.size());
  shape.decode_seqs = static_cast<int32_t>(plan.q_rows.size());
  shape.prefill_blocks = static_cast<int32_t>(plan.block_seq.size());
  shape.splits = shape.decode_seqs > 0 ? cuda::decode_attention_num_splits(
                                             int64_t{shape.decode_seqs} * Hkv, plan.max_row_tokens,
                                             D, G, backend->decode_kernel())
                                       : 1;
  if (opt.decode_splits > 0 && shape.decode_seqs > 0) shape.splits = opt.decode_splits;
  if (sparse && shape.decode_seqs > 0) {
    shape.sparse_splits = cuda::decode_attention_num_splits(
        int64_t{shape.decode_seqs} * Hkv, sparse->max_selected_tokens(plan.max_row_tokens), D, G,
        backend->decode_kernel());
    if (opt.sparse_splits > 0) shape.sparse_splits = opt.sparse_splits;
  }
  if (sparse) {
    shape.max_summarize = static_cast<int32_t>(
        std::max(plan.sparse.summarize_pages.size(), plan.sparse.reset_pages.size()));
  }
  return shape;
}

size_t CudaModelRunner::Impl::workspace_bytes(const StepShape& shape) const {
  return cuda::decode_attention_workspace_bytes(shape.decode_seqs, cfg.num_heads, cfg.head_dim,
                                                std::max(shape.splits, shape.sparse_splits));
}

void CudaModelRunner::Impl::capture_decode_graphs(int32_t max_batch, int32_t max_step_tokens) {
  if (!opt.cuda_graphs) return;
  const std::vector<int32_t> buckets = GraphCache::buckets_up_to(max_batch, opt.max_graph_batch);
  if (buckets.empty()) return;
  // Room for every step the engine can make (a step's page lists hold at most every page once,
  // plus the scratch page; a step of d decoding rows splits their attention at most as a graph
  // of d rows does), so that no later step reallocates, which would drop the graphs.
  const int32_t top = buckets.back();
  size_t ws = 0;
  for (int32_t d = 1; d <= std::max(max_batch, top); ++d)
    ws = std::max(ws, workspace_bytes(bucket_shape(d)));
  ensure_capacity(std::max(max_step_tokens, top), std::max(max_batch, top), int64_t{num_pages} + 2,
                  ws);
  if (sparse) sparse->ensure_rows(int64_t{top} * cfg.num_kv_heads);
  for (int32_t b : buckets) {
    if (graphs.has(b)) continue;
    // Every row a padding row (token 0 against the scratch page; its sample is dropped). The
    // eager run is each kernel's and GEMM configuration's first use, outside any capture.
    plan = StepPlan{};
    pad_step_plan(b, kv.scratch_page(), cfg.num_kv_heads, sparse.get(), plan);
    const StepShape shape = bucket_shape(b);
    meta.upload(plan, sparse != nullptr, stream);
    enqueue_forward(shape);
    graphs.get(b, stream, [&] { enqueue_forward(shape); });
    graphs.mark_warmed(b);
  }
  stats.graphs_captured = graphs.captured();
  check_cuda(cudaStreamSynchronize(stream), "graph warm-up");
}

void CudaModelRunner::Impl::add_profile(const StepTimeline& timeline, const StepShape& shape) {
  double parts[kStepParts] = {};
  timeline.collect(parts);
  SparseStepProfile& pr = sparse->profile();
  ++pr.steps;
  pr.plan_s += parts[kPartPlan];
  pr.summarize_s += parts[kPartSummarize];
  pr.score_s += parts[kPartScore];
  pr.select_s += parts[kPartSelect];
  if (sparse->fuses_select(0, shape.decode_seqs * cfg.num_kv_heads)) ++pr.fused_select_steps;
  pr.attention_s += parts[kPartSparseAttention];
  pr.dense_attention_s += parts[kPartDenseAttention];
  pr.step_s += parts[kPartStep];
}

std::vector<SampledToken> CudaModelRunner::Impl::step(const std::vector<ScheduledWork>& work,
                                                      const std::vector<SamplingRow>& rows) {
  plan = build_step_plan(work, rows, cfg, geo, sparse.get());
  const auto n_real = static_cast<int32_t>(plan.sample_rows.size());
  const auto n_tokens = static_cast<int32_t>(plan.tokens.size());

  // Decode-only steps where every item samples run as a graph of their padded size.
  const int32_t bucket = opt.cuda_graphs && plan.seq_q_begin.empty() && n_real == n_tokens
                             ? GraphCache::bucket_for(n_tokens, opt.max_graph_batch)
                             : 0;
  StepShape shape;
  if (bucket > 0) {
    pad_step_plan(bucket, kv.scratch_page(), cfg.num_kv_heads, sparse.get(), plan);
    shape = bucket_shape(bucket);
  } else {
    shape = eager_shape();
  }
  ensure_capacity(std::max<int64_t>(shape.T, shape.max_summarize), std::max(shape.S, 1),
                  static_cast<int64_t>(plan.pages.size()), workspace_bytes(shape));
  if (sparse && sparse->ensure_rows(int64_t{shape.decode_seqs} * cfg.num_kv_heads)) clear_graphs();
  meta.upload(plan, sparse != nullptr, stream);

  // With a flow, every profile_every-th graph step replays a second graph of the same step that
  // also records events between its parts.
  GraphCache::Profiled* profiled = nullptr;
  if (sparse && bucket > 0 && graphs.warmed(bucket) && opt.profile_every > 0) {
    if (pure_decode_steps % opt.profile_every == opt.profile_every - 1)
      profiled = &graphs.profiled(bucket);
    ++pure_decode_steps;
  }
  const bool capture_range = steps_run++ == opt.profile_step;
  if (capture_range) check_cuda(cudaProfilerStart(), "cudaProfilerStart");
  if (profiled) {
    if (!profiled->exec) {
      profiled->timeline = std::make_unique<StepTimeline>();
      StepTimeline* t = profiled->timeline.get();
      profiled->exec = graphs.capture(stream, [&] {
        t->begin(kPartStep, stream);
        enqueue_forward(shape, t);
        t->end_step(stream);
      });
    }
    check_cuda(cudaGraphLaunch(profiled->exec, stream), "graph launch");
    ++stats.graph_steps;
  } else if (bucket > 0 && graphs.warmed(bucket)) {
    check_cuda(cudaGraphLaunch(graphs.get(bucket, stream, [&] { enqueue_forward(shape); }), stream),
               "graph launch");
    ++stats.graph_steps;
  } else {
    if (bucket > 0) graphs.mark_warmed(bucket);  // the next step of this size is captured
    enqueue_forward(shape);
    ++stats.eager_steps;
  }
  stats.graphs_captured = graphs.captured();
  check_cuda(cudaMemcpyAsync(results_h.data(), backend->results().data(),
                             static_cast<size_t>(n_real) * sizeof(cuda::SampleResult),
                             cudaMemcpyDeviceToHost, stream),
             "reading sampled tokens");
  // Top logprobs are rare and at most kMaxTopLogprobs per row: the rows that ask are copied to
  // the host and ranked there by the CPU runner's function (sampling row i's logits are row i of
  // the logits, graph padding rows come after the real ones).
  const size_t V = static_cast<size_t>(cfg.vocab_size);
  std::vector<int32_t> top_rows;
  for (size_t i = 0; i < rows.size(); ++i) {
    if (rows[i].top_logprobs > 0) top_rows.push_back(static_cast<int32_t>(i));
  }
  if (!top_rows.empty()) {
    top_logits_host.resize(top_rows.size() * V);
    for (size_t j = 0; j < top_rows.size(); ++j) {
      check_cuda(cudaMemcpyAsync(top_logits_host.data() + j * V, backend->logits_row(top_rows[j]),
                                 V * sizeof(float), cudaMemcpyDeviceToHost, stream),
                 "reading logits for top logprobs");
    }
  }
  check_cuda(cudaStreamSynchronize(stream), "forward step");
  if (capture_range) check_cuda(cudaProfilerStop(), "cudaProfilerStop");
  if (profiled) add_profile(*profiled->timeline, shape);
  std::vector<SampledToken> out(static_cast<size_t>(n_real));
  const auto* res = results_h.as<cuda::SampleResult>();
  for (int32_t i = 0; i < n_real; ++i)
    out[i] = {res[i].token, static_cast<double>(res[i].logprob), {}};
  for (size_t j = 0; j < top_rows.size(); ++j) {
    const auto i = static_cast<size_t>(top_rows[j]);
    out[i].top = top_logprobs(top_logits_host.data() + j * V, cfg.vocab_size, rows[i].top_logprobs);
  }
  return out;
}

CudaModelRunner::CudaModelRunner(const LoadedModel& model, const KvGeometry& geometry,
                                 int32_t num_pages, const RunnerOptions& options)
    : impl_(std::make_unique<Impl>(model, geometry, num_pages, options)) {}

CudaModelRunner::~CudaModelRunner() = default;

std::vector<SampledToken> CudaModelRunner::step(const std::vector<ScheduledWork>& work,
                                                const std::vector<SamplingRow>& rows) {
  return impl_->step(work, rows);
}

void CudaModelRunner::set_flows(std::vector<std::shared_ptr<const SparseAttentionConfig>> flows) {
  if (flows.empty()) return;
  Impl& m = *impl_;
  check_cuda(cudaStreamSynchronize(m.stream), "set_flows");
  m.clear_graphs();
  m.sparse =
      std::make_unique<CudaSparseFlows>(std::move(flows), m.cfg, m.geo, m.num_pages + 1, m.opt);
  m.lay_out_metadata();
}

void CudaModelRunner::warm_up(int32_t max_batch, int32_t max_step_tokens) {
  impl_->capture_decode_graphs(max_batch, max_step_tokens);
}

const SparseStats* CudaModelRunner::sparse_stats(size_t flow) const {
  const CudaSparseFlows* s = impl_->sparse.get();
  return s && flow < s->size() ? &s->flow(flow).stats() : nullptr;
}

const SparseStepProfile* CudaModelRunner::sparse_profile() const {
  return impl_->sparse ? &impl_->sparse->profile() : nullptr;
}

double CudaModelRunner::measure_bandwidth() {
  check_cuda(cudaStreamSynchronize(impl_->stream), "measure_bandwidth");
  return measure_copy_bandwidth();
}

size_t CudaModelRunner::weight_bytes() const {
  const DeviceWeights& w = impl_->backend->weights();
  const ModelConfig& c = impl_->cfg;
  return w.bytes() - w.embed.bytes() - w.lm_head_own.bytes() +
         static_cast<size_t>(c.vocab_size) * c.hidden_size * sizeof(cuda::bf16_t);
}

void CudaModelRunner::read_kv_block(int32_t layer, int32_t page, int32_t kv_head, float* k,
                                    float* v) const {
  check_cuda(cudaStreamSynchronize(impl_->stream), "read_kv_block");
  impl_->kv.read_block(layer, page, kv_head, k, v);
}

const CudaModelRunner::Stats& CudaModelRunner::stats() const {
  return impl_->stats;
}

}  // namespace vortex
