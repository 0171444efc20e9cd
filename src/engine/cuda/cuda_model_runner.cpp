#include "engine/cuda/cuda_model_runner.h"

#include <cuda_profiler_api.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>

#include "core/error.h"
#include "engine/cuda/cuda_sparse_flows.h"
#include "engine/cuda/cuda_util.h"
#include "engine/cuda/device_weights.h"
#include "engine/cuda/gemm.h"
#include "kernels/cpu/rope.h"
#include "kernels/cuda/attention.h"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/qkv_rope.h"
#include "kernels/cuda/sampling.h"

namespace vortex {

using cuda::bf16_t;

namespace {

// Padded decode batch sizes that get a CUDA graph each.
constexpr int32_t kBuckets[] = {1,  2,  4,   8,   12,  16,  24,  32,  40,  48,  56,  64,
                                80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448, 512};

size_t align_up(size_t n, size_t a) {
  return (n + a - 1) / a * a;
}

// The host's description of one step, flattened into the int32 arrays the kernels read.
struct StepPlan {
  std::vector<int32_t> tokens, positions, kv_pages, kv_slots, sample_rows;
  std::vector<int32_t> q_rows, row_page_offset, row_num_tokens;              // decode
  std::vector<int32_t> block_seq, block_q_start;                             // prefill
  std::vector<int32_t> seq_q_begin, seq_q_len, seq_kv_len, seq_page_offset;  // prefill
  std::vector<int32_t> pages;
  std::vector<cuda::SampleParams> params;
  int32_t max_row_tokens = 0;
  SparseStepLists sparse;  // with a flow
};

// Offsets (bytes) of each array in the metadata buffer, for given capacities. The page lists
// come last, so one copy of the used prefix uploads a step.
struct MetaLayout {
  size_t tokens, positions, kv_pages, kv_slots, sample_rows, q_rows, row_page_offset,
      row_num_tokens, block_seq, block_q_start, seq_q_begin, seq_q_len, seq_kv_len, seq_page_offset,
      params, summarize_pages, reset_pages, sparse_counts, row_mode, row_policy, pages, total;
  int64_t rows_cap = 0;  // elements between the row-mode lists
  MetaLayout() = default;
  // mode_lists: the flows' row-mode lists (CudaSparseFlows::num_mode_lists).
  MetaLayout(int64_t t_cap, int64_t s_cap, int64_t rows, int64_t pages_cap, int64_t mode_lists)
      : rows_cap(rows) {
    size_t at = 0;
    auto take = [&](int64_t n, size_t elem) {
      at = align_up(at, 16);
      size_t r = at;
      at += static_cast<size_t>(n) * elem;
      return r;
    };
    tokens = take(t_cap, 4);
    positions = take(t_cap, 4);
    kv_pages = take(t_cap, 4);
    kv_slots = take(t_cap, 4);
    sample_rows = take(s_cap, 4);
    q_rows = take(t_cap, 4);
    row_page_offset = take(rows_cap, 4);
    row_num_tokens = take(rows_cap, 4);
    block_seq = take(t_cap, 4);
    block_q_start = take(t_cap, 4);
    seq_q_begin = take(t_cap, 4);
    seq_q_len = take(t_cap, 4);
    seq_kv_len = take(t_cap, 4);
    seq_page_offset = take(t_cap, 4);
    params = take(s_cap, sizeof(cuda::SampleParams));
    summarize_pages = take(t_cap, 4);
    reset_pages = take(t_cap, 4);
    sparse_counts = take(4, 4);  // [0] summarize, [1] reset
    row_mode = take(mode_lists * rows_cap, 4);
    row_policy = take(rows_cap, sizeof(cuda::DevicePagePolicy));
    pages = take(pages_cap, 4);
    total = align_up(at, 16);
  }
};

// What a step's kernels are sized for; equal shapes replay the same graph.
struct StepShape {
  int32_t T = 0, S = 0, decode_seqs = 0, prefill_blocks = 0, splits = 1;
  int32_t sparse_splits = 1, max_summarize = 0;  // with a flow
};

// Parts of a decode step whose GPU time a profiled step measures.
enum Part { kPlan, kSummarize, kScore, kSelect, kSparseAttention, kDenseAttention, kStep, kParts };

// Events around the parts of a profiled step, recorded while the step is captured into its own
// CUDA graph (as event-record nodes), so the parts are timed as they run in a graph; read after
// each replay synchronises.
class StepTimeline {
 public:
  ~StepTimeline() {
    for (cudaEvent_t e : pool_) cudaEventDestroy(e);
  }
  // Spans of one part may not nest (kStep is kept apart: it encloses the others).
  void begin(Part part, cudaStream_t stream) {
    if (part == kStep)
      step_open_ = record(stream);
    else
      open_ = {part, record(stream)};
  }
  void end(cudaStream_t stream) { spans_.push_back({open_.first, open_.second, record(stream)}); }
  void end_step(cudaStream_t stream) { spans_.push_back({kStep, step_open_, record(stream)}); }
  // Adds each part's seconds of the last replay to out[part].
  void collect(double* out) const {
    for (const Span& s : spans_) {
      float ms = 0;
      check_cuda(cudaEventElapsedTime(&ms, pool_[s.start], pool_[s.end]), "profile events");
      out[s.part] += ms * 1e-3;
    }
  }

 private:
  struct Span {
    Part part;
    size_t start, end;
  };
  size_t record(cudaStream_t stream) {
    if (used_ == pool_.size()) {
      cudaEvent_t e = nullptr;
      check_cuda(cudaEventCreate(&e), "profile events");
      pool_.push_back(e);
    }
    check_cuda(cudaEventRecordWithFlags(pool_[used_], stream, cudaEventRecordExternal),
               "profile events");
    return used_++;
  }
  std::vector<cudaEvent_t> pool_;
  size_t used_ = 0;
  std::pair<Part, size_t> open_{kStep, 0};
  size_t step_open_ = 0;
  std::vector<Span> spans_;
};

}  // namespace

struct CudaModelRunner::Impl {
  Impl(const LoadedModel& model, const KvGeometry& geometry, int32_t num_pages,
       const CudaRunnerOptions& options);
  ~Impl();

  std::vector<SampledToken> step(const std::vector<ScheduledWork>& work,
                                 const std::vector<SamplingRow>& rows);
  void build_plan(const std::vector<ScheduledWork>& work, const std::vector<SamplingRow>& rows);
  void pad_for_graph(int32_t bucket);
  StepShape bucket_shape(int32_t bucket) const;
  size_t workspace_bytes(const StepShape& shape) const;
  cudaGraphExec_t capture_graph(const StepShape& shape);
  void capture_decode_graphs(int32_t max_batch, int32_t max_step_tokens);
  void ensure_capacity(int64_t T, int64_t S, int64_t pages, size_t workspace);
  // Places the metadata arrays for the capacities (and the flows' row-mode lists).
  void lay_out_metadata();
  void upload_plan();
  void enqueue_forward(const StepShape& s);
  SparseStepMeta sparse_meta(const StepShape& s) const;
  void clear_graphs();

  template <class T>
  T* meta(size_t offset) const {
    return reinterpret_cast<T*>(meta_d.as<char>() + offset);
  }
  int64_t layer_elems() const {
    return int64_t{num_pages + 1} * geo.num_kv_heads * geo.page_size * geo.head_dim;
  }

  const ModelConfig& cfg;
  KvGeometry geo;
  int32_t num_pages;  // page num_pages is a scratch page for padded graph rows
  CudaRunnerOptions opt;
  cudaStream_t stream = nullptr;
  std::unique_ptr<Gemm> gemm;
  DeviceWeights w;
  DeviceBuffer kv_k, kv_v, inv_freq;

  int64_t t_cap = 0, s_cap = 0, pages_cap = 0;
  size_t ws_cap = 0;
  MetaLayout layout;
  DeviceBuffer x, h, qkv, q, attn, delta, gate_up, act, hs, logits, sample_scratch, results,
      workspace, meta_d;
  PinnedBuffer meta_h, results_h;

  StepPlan plan;
  std::map<int32_t, cudaGraphExec_t> graphs;
  std::set<int32_t> warmed;
  // Logits of the rows that ask for top logprobs this step, [asking rows, vocab] (a step where
  // no row asks copies nothing).
  std::vector<float> top_logits_host;
  Stats stats;

  std::unique_ptr<CudaSparseFlows> sparse;
  int32_t profile_every = 32;  // every this many decode graph steps replay the profiled graph
  int32_t sparse_splits_override = 0;  // $VORTEX_SPARSE_SPLITS, for tuning
  int32_t decode_splits_override = 0;  // $VORTEX_DECODE_SPLITS (dense decode rows), for tuning
  int64_t pure_decode_steps = 0;
  // VORTEX_CUDA_PROFILE_STEP=N: step N (counted from 0 over every step this runner runs) is
  // wrapped in cudaProfilerStart/Stop, the capture range of Nsight Compute and Nsight Systems
  // (`--profile-from-start off`, `--capture-range cudaProfilerApi`); -1 when unset.
  int64_t profile_step = -1;
  int64_t steps_run = 0;
  StepTimeline* timeline = nullptr;  // set while a profiled step is captured
  struct ProfileGraph {
    cudaGraphExec_t exec = nullptr;
    std::unique_ptr<StepTimeline> timeline;
  };
  std::map<int32_t, ProfileGraph> profile_graphs;  // per bucket
};

CudaModelRunner::Impl::Impl(const LoadedModel& model, const KvGeometry& geometry, int32_t pages,
                            const CudaRunnerOptions& options)
    : cfg(model.config), geo(geometry), num_pages(pages), opt(options) {
  require_cuda_device();  // a clear error without a GPU
  VORTEX_ASSERT(geo.num_layers == cfg.num_layers && geo.num_kv_heads == cfg.num_kv_heads &&
                geo.head_dim == cfg.head_dim);
  if (cfg.head_dim % 8 != 0 || cfg.head_dim > 128)
    fail("--device cuda supports head_dim a multiple of 8 up to 128, the model has ", cfg.head_dim);
  if (cfg.group_size() > 16)
    fail("--device cuda supports up to 16 query heads per KV head, the model has ",
         cfg.group_size());
  if (const char* env = std::getenv("VORTEX_CUDA_GRAPHS"); env && std::string(env) == "0")
    opt.use_graphs = false;
  if (const char* env = std::getenv("VORTEX_DECODE_SPLITS"))
    decode_splits_override = std::atoi(env);
  if (const char* env = std::getenv("VORTEX_CUDA_PROFILE_STEP")) profile_step = std::atoll(env);
  check_cuda(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
  gemm = std::make_unique<Gemm>();
  w = upload_weights(model.weights, cfg);
  const size_t kv_bytes = static_cast<size_t>(geo.num_layers) * layer_elems() * sizeof(bf16_t);
  kv_k = DeviceBuffer(kv_bytes, "the K cache");
  kv_v = DeviceBuffer(kv_bytes, "the V cache");
  const std::vector<float> freq = cpu::rope_inv_freq(cfg.head_dim, cfg.rope);
  inv_freq = DeviceBuffer(freq.size() * sizeof(float), "rope frequencies");
  check_cuda(
      cudaMemcpy(inv_freq.data(), freq.data(), freq.size() * sizeof(float), cudaMemcpyHostToDevice),
      "rope upload");
  ensure_capacity(256, 64, 4096, 0);
}

CudaModelRunner::Impl::~Impl() {
  clear_graphs();
  if (stream) cudaStreamDestroy(stream);
}

void CudaModelRunner::Impl::clear_graphs() {
  for (auto& [bucket, exec] : graphs) cudaGraphExecDestroy(exec);
  graphs.clear();
  for (auto& [bucket, pg] : profile_graphs)
    if (pg.exec) cudaGraphExecDestroy(pg.exec);
  profile_graphs.clear();
  warmed.clear();
}

void CudaModelRunner::Impl::ensure_capacity(int64_t T, int64_t S, int64_t pages, size_t ws) {
  if (T <= t_cap && S <= s_cap && pages <= pages_cap && ws <= ws_cap) return;
  check_cuda(cudaStreamSynchronize(stream), "synchronize before reallocation");
  clear_graphs();  // graphs hold the old addresses
  if (T > t_cap) {
    t_cap = std::max<int64_t>(T, t_cap * 2);
    const int64_t H = cfg.hidden_size, I = cfg.intermediate_size;
    const int64_t qd = int64_t{cfg.num_heads} * cfg.head_dim;
    const int64_t qkv_dim = qd + 2 * int64_t{cfg.num_kv_heads} * cfg.head_dim;
    x = DeviceBuffer(t_cap * H * 4, "activations");
    h = DeviceBuffer(t_cap * H * 2, "activations");
    qkv = DeviceBuffer(t_cap * qkv_dim * 4, "activations");
    q = DeviceBuffer(t_cap * qd * 2, "activations");
    attn = DeviceBuffer(t_cap * qd * 2, "activations");
    delta = DeviceBuffer(t_cap * H * 4, "activations");
    gate_up = DeviceBuffer(t_cap * 2 * I * 4, "activations");
    act = DeviceBuffer(t_cap * I * 2, "activations");
  }
  if (S > s_cap) {
    s_cap = std::max<int64_t>(S, s_cap * 2);
    const int64_t V = cfg.vocab_size;
    hs = DeviceBuffer(s_cap * cfg.hidden_size * 2, "sampling rows");
    logits = DeviceBuffer(s_cap * V * 4, "logits");
    sample_scratch = DeviceBuffer(s_cap * V * 4, "sampling scratch");
    results = DeviceBuffer(s_cap * sizeof(cuda::SampleResult), "sampled tokens");
    results_h = PinnedBuffer(s_cap * sizeof(cuda::SampleResult));
  }
  if (pages > pages_cap) pages_cap = std::max<int64_t>(pages, pages_cap * 2);
  if (ws > ws_cap) {
    ws_cap = std::max(ws, ws_cap * 2);
    workspace = DeviceBuffer(ws_cap, "attention workspace");
  }
  lay_out_metadata();
}

void CudaModelRunner::Impl::lay_out_metadata() {
  layout = MetaLayout(t_cap, s_cap, t_cap * cfg.num_kv_heads, pages_cap,
                      sparse ? static_cast<int64_t>(sparse->num_mode_lists()) : 0);
  if (layout.total > meta_d.bytes()) {
    meta_d = DeviceBuffer(layout.total, "step metadata");
    meta_h = PinnedBuffer(layout.total);
  }
}

void CudaModelRunner::Impl::build_plan(const std::vector<ScheduledWork>& work,
                                       const std::vector<SamplingRow>& rows) {
  StepPlan& p = plan;
  p = StepPlan{};
  const int32_t P = geo.page_size, Hkv = geo.num_kv_heads;
  const int32_t tpb = cuda::prefill_attention_block_tokens(cfg.group_size());
  struct Block {
    int32_t seq, q_start, last_pos;
  };
  std::vector<Block> blocks;
  size_t row = 0;
  for (const ScheduledWork& wk : work) {
    const Request& r = *wk.request;
    const std::vector<int32_t>& pages = r.blocks.pages();
    const int32_t kv_len = wk.first + wk.count;
    const int32_t n_pages = (kv_len + P - 1) / P;
    VORTEX_ASSERT(static_cast<int32_t>(pages.size()) >= n_pages);
    const auto offset = static_cast<int32_t>(p.pages.size());
    p.pages.insert(p.pages.end(), pages.begin(), pages.begin() + n_pages);
    const auto q_begin = static_cast<int32_t>(p.tokens.size());
    for (int32_t pos = wk.first; pos < kv_len; ++pos) {
      p.tokens.push_back(r.token_at(pos));
      p.positions.push_back(pos);
      p.kv_pages.push_back(pages[pos / P]);
      p.kv_slots.push_back(pos % P);
    }
    if (wk.count == 1) {
      p.q_rows.push_back(q_begin);
      for (int32_t hd = 0; hd < Hkv; ++hd) {
        p.row_page_offset.push_back(offset);
        p.row_num_tokens.push_back(kv_len);
      }
      p.max_row_tokens = std::max(p.max_row_tokens, kv_len);
    } else {
      const auto seq = static_cast<int32_t>(p.seq_q_begin.size());
      p.seq_q_begin.push_back(q_begin);
      p.seq_q_len.push_back(wk.count);
      p.seq_kv_len.push_back(kv_len);
      p.seq_page_offset.push_back(offset);
      for (int32_t qs = 0; qs < wk.count; qs += tpb)
        blocks.push_back({seq, qs, wk.first + std::min(qs + tpb, wk.count) - 1});
    }
    if (wk.samples()) {
      VORTEX_ASSERT(row < rows.size());
      p.sample_rows.push_back(static_cast<int32_t>(p.tokens.size()) - 1);
      const SamplingParams& sp = *rows[row].params;
      cuda::SampleParams dp;
      dp.temperature = sp.temperature;
      dp.top_k = sp.top_k;
      dp.top_p = sp.top_p;
      dp.min_p = sp.min_p;
      // One draw of the request's own generator keys the device's counter-based generator,
      // so a request's samples do not depend on the rest of the batch. A forced token draws
      // nothing (as on the CPU).
      dp.forced_token = rows[row].forced_token;
      if (sp.temperature > 0.0f && dp.forced_token < 0) dp.key = rows[row].rng->next_u64();
      dp.counter = static_cast<uint64_t>(kv_len);
      p.params.push_back(dp);
      ++row;
    }
  }
  VORTEX_ASSERT(row == rows.size());
  if (sparse) sparse->begin_step(work, p.sparse);
  // Longest blocks first, so the long causal blocks do not end up in the last wave.
  std::stable_sort(blocks.begin(), blocks.end(),
                   [](const Block& a, const Block& b) { return a.last_pos > b.last_pos; });
  for (const Block& b : blocks) {
    p.block_seq.push_back(b.seq);
    p.block_q_start.push_back(b.q_start);
  }
}

// Pads a decode-only plan to `bucket` sequences: the extra rows compute token 0 at position 0
// against the scratch page, and their samples are dropped.
void CudaModelRunner::Impl::pad_for_graph(int32_t bucket) {
  StepPlan& p = plan;
  const auto scratch_offset = static_cast<int32_t>(p.pages.size());
  p.pages.push_back(num_pages);
  while (static_cast<int32_t>(p.tokens.size()) < bucket) {
    const auto t = static_cast<int32_t>(p.tokens.size());
    p.tokens.push_back(0);
    p.positions.push_back(0);
    p.kv_pages.push_back(num_pages);
    p.kv_slots.push_back(0);
    p.q_rows.push_back(t);
    for (int32_t hd = 0; hd < geo.num_kv_heads; ++hd) {
      p.row_page_offset.push_back(scratch_offset);
      p.row_num_tokens.push_back(1);
    }
    if (sparse) sparse->pad_rows(1, p.sparse);
    p.sample_rows.push_back(t);
    p.params.push_back(cuda::SampleParams{});
  }
}

void CudaModelRunner::Impl::upload_plan() {
  const StepPlan& p = plan;
  char* base = meta_h.as<char>();
  auto put = [&](size_t off, const auto& v) {
    if (!v.empty()) std::memcpy(base + off, v.data(), v.size() * sizeof(v[0]));
  };
  put(layout.tokens, p.tokens);
  put(layout.positions, p.positions);
  put(layout.kv_pages, p.kv_pages);
  put(layout.kv_slots, p.kv_slots);
  put(layout.sample_rows, p.sample_rows);
  put(layout.q_rows, p.q_rows);
  put(layout.row_page_offset, p.row_page_offset);
  put(layout.row_num_tokens, p.row_num_tokens);
  put(layout.block_seq, p.block_seq);
  put(layout.block_q_start, p.block_q_start);
  put(layout.seq_q_begin, p.seq_q_begin);
  put(layout.seq_q_len, p.seq_q_len);
  put(layout.seq_kv_len, p.seq_kv_len);
  put(layout.seq_page_offset, p.seq_page_offset);
  put(layout.params, p.params);
  if (sparse) {
    put(layout.summarize_pages, p.sparse.summarize_pages);
    put(layout.reset_pages, p.sparse.reset_pages);
    for (size_t i = 0; i < p.sparse.row_mode.size(); ++i)
      put(layout.row_mode + i * static_cast<size_t>(layout.rows_cap) * 4, p.sparse.row_mode[i]);
    put(layout.row_policy, p.sparse.row_policy);
    const int32_t counts[4] = {static_cast<int32_t>(p.sparse.summarize_pages.size()),
                               static_cast<int32_t>(p.sparse.reset_pages.size()), 0, 0};
    std::memcpy(base + layout.sparse_counts, counts, sizeof(counts));
  }
  put(layout.pages, p.pages);
  const size_t used = layout.pages + p.pages.size() * sizeof(int32_t);
  check_cuda(cudaMemcpyAsync(meta_d.data(), base, used, cudaMemcpyHostToDevice, stream),
             "metadata upload");
}

SparseStepMeta CudaModelRunner::Impl::sparse_meta(const StepShape& s) const {
  SparseStepMeta m;
  m.q_rows = meta<int32_t>(layout.q_rows);
  m.row_page_offset = meta<int32_t>(layout.row_page_offset);
  m.row_num_tokens = meta<int32_t>(layout.row_num_tokens);
  m.pages = meta<int32_t>(layout.pages);
  m.summarize_pages = meta<int32_t>(layout.summarize_pages);
  m.num_summarize = meta<int32_t>(layout.sparse_counts);
  m.reset_pages = meta<int32_t>(layout.reset_pages);
  m.num_reset = meta<int32_t>(layout.sparse_counts) + 1;
  m.row_mode = meta<int32_t>(layout.row_mode);
  m.row_mode_stride = layout.rows_cap;
  m.row_policy = meta<cuda::DevicePagePolicy>(layout.row_policy);
  m.decode_seqs = s.decode_seqs;
  m.max_summarize = s.max_summarize;
  return m;
}

void CudaModelRunner::Impl::enqueue_forward(const StepShape& s) {
  const int64_t T = s.T, H = cfg.hidden_size, I = cfg.intermediate_size;
  const int32_t Hq = cfg.num_heads, Hkv = cfg.num_kv_heads, D = cfg.head_dim;
  const int64_t qd = int64_t{Hq} * D, qkv_dim = qd + 2 * int64_t{Hkv} * D;
  const float eps = static_cast<float>(cfg.rms_norm_eps);
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  const int64_t lstride = layer_elems();
  // Layer l's paged K/V cache, as the attention and summarize kernels read it.
  auto layer_kv = [&](int32_t l) {
    cuda::DevicePagedKv kv;
    kv.k = kv_k.as<bf16_t>() + l * lstride;
    kv.v = kv_v.as<bf16_t>() + l * lstride;
    kv.page_size = geo.page_size;
    kv.num_kv_heads = Hkv;
    kv.head_dim = D;
    kv.page_stride = int64_t{Hkv} * geo.page_size * D;
    kv.head_stride = int64_t{geo.page_size} * D;
    return kv;
  };

  const SparseStepMeta sm = sparse ? sparse_meta(s) : SparseStepMeta{};
  auto begin = [&](Part part) {
    if (timeline) timeline->begin(part, stream);
  };
  auto end = [&]() {
    if (timeline) timeline->end(stream);
  };
  check_cuda(cuda::embedding(meta<int32_t>(layout.tokens), T, w.embed.as<bf16_t>(), cfg.vocab_size,
                             H, x.as<float>(), stream),
             "embedding");
  if (sparse) {
    begin(kPlan);
    sparse->enqueue_plan(sm, stream);
    end();
  }
  for (int32_t l = 0; l < cfg.num_layers; ++l) {
    const DeviceLayerWeights& lw = w.layers[static_cast<size_t>(l)];
    check_cuda(cuda::residual_rms_norm(x.as<float>(), l == 0 ? nullptr : delta.as<float>(), nullptr,
                                       nullptr, T, H, lw.input_norm.as<bf16_t>(), eps,
                                       h.as<bf16_t>(), stream),
               "input norm");
    gemm->f32_out(h.as<bf16_t>(), T, H, lw.qkv.as<bf16_t>(), qkv_dim, qkv.as<float>(), stream);

    const cuda::DevicePagedKv kv = layer_kv(l);
    cuda::QkvRopeArgs ra;
    ra.qkv = qkv.as<float>();
    ra.bias = lw.qkv_bias.as<bf16_t>();
    ra.q_norm = lw.q_norm.as<bf16_t>();
    ra.k_norm = lw.k_norm.as<bf16_t>();
    ra.inv_freq = inv_freq.as<float>();
    ra.positions = meta<int32_t>(layout.positions);
    ra.kv_pages = meta<int32_t>(layout.kv_pages);
    ra.kv_slots = meta<int32_t>(layout.kv_slots);
    ra.num_tokens = T;
    ra.num_q_heads = Hq;
    ra.num_kv_heads = Hkv;
    ra.head_dim = D;
    ra.eps = eps;
    ra.q_out = q.as<bf16_t>();
    ra.k_cache = kv_k.as<bf16_t>() + l * lstride;
    ra.v_cache = kv_v.as<bf16_t>() + l * lstride;
    ra.page_stride = kv.page_stride;
    ra.head_stride = kv.head_stride;
    check_cuda(cuda::qkv_rope_append(ra, stream), "qkv/rope/append");

    const bool sparse_layer = sparse && sparse->is_sparse_layer(l);
    // Pages that became full in this step are summarized here, per layer, or once after the
    // last layer for every sparse layer (no score of this step reads them: see
    // CudaFlowSelector::defers_summarize).
    if (sparse_layer && sparse->summarizes_after_layer(l)) {
      begin(kSummarize);
      sparse->enqueue_summarize_after_layer(l, kv, sm, stream);
      end();
    }
    if (s.decode_seqs > 0) {
      cuda::DecodeAttentionArgs da;
      da.q = q.as<bf16_t>();
      da.out = attn.as<bf16_t>();
      da.q_rows = meta<int32_t>(layout.q_rows);
      da.row_page_offset = meta<int32_t>(layout.row_page_offset);
      da.row_num_tokens = meta<int32_t>(layout.row_num_tokens);
      da.pages = meta<int32_t>(layout.pages);
      da.num_seqs = s.decode_seqs;
      da.num_q_heads = Hq;
      da.num_splits = s.splits;
      da.scale = scale;
      da.workspace = workspace.as<float>();
      if (sparse_layer) {
        // Each flow sparse here writes its rows' page lists; the others' rows were given their
        // dense lists (CudaSparseFlows).
        for (const size_t f : sparse->flows_at(l)) {
          begin(kScore);
          sparse->enqueue_score(f, l, reinterpret_cast<const uint16_t*>(q.as<bf16_t>()), Hq, sm,
                                stream);
          end();
          // A fused score-and-select kernel selects in the score part.
          const bool fused = sparse->fuses_select(f, sm.decode_seqs * Hkv);
          if (!fused) begin(kSelect);
          sparse->enqueue_select(f, l, sm, stream);
          if (!fused) end();
        }
        const SelectedPageLists lists = sparse->lists(l);
        da.row_page_offset = lists.row_page_offset;
        da.row_num_tokens = lists.num_tokens;
        da.pages = lists.pages;
        da.num_splits = s.sparse_splits;
      }
      begin(sparse_layer ? kSparseAttention : kDenseAttention);
      check_cuda(cuda::decode_attention(da, kv, stream), "decode attention");
      end();
    }
    if (s.prefill_blocks > 0) {
      cuda::PrefillAttentionArgs pa;
      pa.q = q.as<bf16_t>();
      pa.out = attn.as<bf16_t>();
      pa.block_seq = meta<int32_t>(layout.block_seq);
      pa.block_q_start = meta<int32_t>(layout.block_q_start);
      pa.seq_q_begin = meta<int32_t>(layout.seq_q_begin);
      pa.seq_q_len = meta<int32_t>(layout.seq_q_len);
      pa.seq_kv_len = meta<int32_t>(layout.seq_kv_len);
      pa.seq_page_offset = meta<int32_t>(layout.seq_page_offset);
      pa.pages = meta<int32_t>(layout.pages);
      pa.num_blocks = s.prefill_blocks;
      pa.num_q_heads = Hq;
      pa.scale = scale;
      check_cuda(cuda::prefill_attention(pa, kv, stream), "prefill attention");
    }
    gemm->f32_out(attn.as<bf16_t>(), T, qd, lw.o_proj.as<bf16_t>(), H, delta.as<float>(), stream);
    check_cuda(cuda::residual_rms_norm(x.as<float>(), delta.as<float>(), lw.o_bias.as<bf16_t>(),
                                       nullptr, T, H, lw.post_attention_norm.as<bf16_t>(), eps,
                                       h.as<bf16_t>(), stream),
               "post-attention norm");
    gemm->f32_out(h.as<bf16_t>(), T, H, lw.gate_up.as<bf16_t>(), 2 * I, gate_up.as<float>(),
                  stream);
    check_cuda(cuda::swiglu(gate_up.as<float>(), T, I, act.as<bf16_t>(), stream), "swiglu");
    gemm->f32_out(act.as<bf16_t>(), T, I, lw.down.as<bf16_t>(), H, delta.as<float>(), stream);
  }
  if (sparse && sparse->summarizes_after_step()) {
    begin(kSummarize);
    sparse->enqueue_summarize_after_step(layer_kv(0), lstride, sm, stream);
    end();
  }
  // Only the rows that sample need the final norm and the vocabulary projection.
  check_cuda(cuda::residual_rms_norm(x.as<float>(), delta.as<float>(), nullptr,
                                     meta<int32_t>(layout.sample_rows), s.S, H,
                                     w.final_norm.as<bf16_t>(), eps, hs.as<bf16_t>(), stream),
             "final norm");
  gemm->f32_out(hs.as<bf16_t>(), s.S, H, w.lm_head(), cfg.vocab_size, logits.as<float>(), stream);
  check_cuda(cuda::sample_tokens(
                 logits.as<float>(), s.S, cfg.vocab_size, meta<cuda::SampleParams>(layout.params),
                 sample_scratch.as<float>(), results.as<cuda::SampleResult>(), stream),
             "sampling");
}

// The shape of a decode-only step padded to `bucket` sequences: what its CUDA graph is made
// for, whatever the rows hold (attention splits sized for rows of the whole context).
StepShape CudaModelRunner::Impl::bucket_shape(int32_t bucket) const {
  const int32_t D = cfg.head_dim, Hkv = cfg.num_kv_heads, G = cfg.group_size();
  StepShape shape;
  shape.T = shape.S = shape.decode_seqs = bucket;
  shape.splits =
      cuda::decode_attention_num_splits(int64_t{bucket} * Hkv, cfg.max_position_embeddings, D, G);
  if (decode_splits_override > 0) shape.splits = decode_splits_override;
  if (sparse) {
    // Sparse layers read at most the budget of a row of the whole context.
    shape.sparse_splits = cuda::decode_attention_num_splits(
        int64_t{bucket} * Hkv, sparse->max_selected_tokens(cfg.max_position_embeddings), D, G);
    if (sparse_splits_override > 0) shape.sparse_splits = sparse_splits_override;
    shape.max_summarize = bucket;
  }
  return shape;
}

size_t CudaModelRunner::Impl::workspace_bytes(const StepShape& shape) const {
  return cuda::decode_attention_workspace_bytes(shape.decode_seqs, cfg.num_heads, cfg.head_dim,
                                                std::max(shape.splits, shape.sparse_splits));
}

cudaGraphExec_t CudaModelRunner::Impl::capture_graph(const StepShape& shape) {
  cudaGraph_t graph = nullptr;
  check_cuda(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), "graph capture");
  try {
    enqueue_forward(shape);
  } catch (...) {
    cudaStreamEndCapture(stream, &graph);
    if (graph) cudaGraphDestroy(graph);
    throw;
  }
  check_cuda(cudaStreamEndCapture(stream, &graph), "graph capture");
  cudaGraphExec_t exec = nullptr;
  cudaError_t err = cudaGraphInstantiate(&exec, graph, 0);
  cudaGraphDestroy(graph);
  check_cuda(err, "graph instantiation");
  ++stats.graphs_captured;
  return exec;
}

void CudaModelRunner::Impl::capture_decode_graphs(int32_t max_batch, int32_t max_step_tokens) {
  if (!opt.use_graphs || max_batch <= 0) return;
  std::vector<int32_t> buckets;
  for (int32_t b : kBuckets) {
    if (b > opt.max_graph_batch) break;
    buckets.push_back(b);
    if (b >= max_batch) break;
  }
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
    if (graphs.count(b) > 0) continue;
    // Every row a padding row (token 0 against the scratch page; its sample is dropped). The
    // eager run is each kernel's and GEMM configuration's first use, outside any capture.
    plan = StepPlan{};
    pad_for_graph(b);
    const StepShape shape = bucket_shape(b);
    upload_plan();
    enqueue_forward(shape);
    graphs.emplace(b, capture_graph(shape));
    warmed.insert(b);
  }
  check_cuda(cudaStreamSynchronize(stream), "graph warm-up");
}

std::vector<SampledToken> CudaModelRunner::Impl::step(const std::vector<ScheduledWork>& work,
                                                      const std::vector<SamplingRow>& rows) {
  build_plan(work, rows);
  const auto n_real = static_cast<int32_t>(plan.sample_rows.size());
  const auto n_tokens = static_cast<int32_t>(plan.tokens.size());
  const int32_t D = cfg.head_dim, Hkv = cfg.num_kv_heads, G = cfg.group_size();

  // Decode-only steps where every item samples run as a graph of their padded size.
  int32_t bucket = 0;
  if (opt.use_graphs && n_tokens > 0 && plan.seq_q_begin.empty() && n_real == n_tokens &&
      n_tokens <= opt.max_graph_batch) {
    for (int32_t b : kBuckets) {
      if (b >= n_tokens) {
        bucket = b;
        break;
      }
    }
  }
  StepShape shape;
  if (bucket > 0) {
    pad_for_graph(bucket);
    shape = bucket_shape(bucket);
  } else {
    shape.T = n_tokens;
    shape.S = n_real;
    shape.decode_seqs = static_cast<int32_t>(plan.q_rows.size());
    shape.prefill_blocks = static_cast<int32_t>(plan.block_seq.size());
    shape.splits = shape.decode_seqs > 0
                       ? cuda::decode_attention_num_splits(int64_t{shape.decode_seqs} * Hkv,
                                                           plan.max_row_tokens, D, G)
                       : 1;
    if (decode_splits_override > 0 && shape.decode_seqs > 0) shape.splits = decode_splits_override;
    if (sparse && shape.decode_seqs > 0) {
      shape.sparse_splits = cuda::decode_attention_num_splits(
          int64_t{shape.decode_seqs} * Hkv, sparse->max_selected_tokens(plan.max_row_tokens), D, G);
      if (sparse_splits_override > 0) shape.sparse_splits = sparse_splits_override;
    }
    if (sparse) {
      shape.max_summarize = static_cast<int32_t>(
          std::max(plan.sparse.summarize_pages.size(), plan.sparse.reset_pages.size()));
    }
  }
  ensure_capacity(std::max<int64_t>(shape.T, shape.max_summarize), std::max(shape.S, 1),
                  static_cast<int64_t>(plan.pages.size()), workspace_bytes(shape));
  if (sparse && sparse->ensure_rows(int64_t{shape.decode_seqs} * Hkv)) clear_graphs();
  upload_plan();

  // With a flow, every profile_every-th graph step replays a second graph of the same step that
  // also records events between its parts.
  ProfileGraph* profiled = nullptr;
  if (sparse && bucket > 0 && warmed.count(bucket) > 0 && profile_every > 0) {
    if (pure_decode_steps % profile_every == profile_every - 1) profiled = &profile_graphs[bucket];
    ++pure_decode_steps;
  }
  const bool capture_range = steps_run++ == profile_step;
  if (capture_range) check_cuda(cudaProfilerStart(), "cudaProfilerStart");
  if (profiled) {
    if (!profiled->exec) {
      profiled->timeline = std::make_unique<StepTimeline>();
      cudaGraph_t graph = nullptr;
      check_cuda(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), "graph capture");
      timeline = profiled->timeline.get();
      try {
        timeline->begin(kStep, stream);
        enqueue_forward(shape);
        timeline->end_step(stream);
      } catch (...) {
        timeline = nullptr;
        cudaStreamEndCapture(stream, &graph);
        if (graph) cudaGraphDestroy(graph);
        throw;
      }
      timeline = nullptr;
      check_cuda(cudaStreamEndCapture(stream, &graph), "graph capture");
      cudaError_t err = cudaGraphInstantiate(&profiled->exec, graph, 0);
      cudaGraphDestroy(graph);
      check_cuda(err, "graph instantiation");
      ++stats.graphs_captured;
    }
    check_cuda(cudaGraphLaunch(profiled->exec, stream), "graph launch");
    ++stats.graph_steps;
  } else if (bucket > 0 && warmed.count(bucket) > 0) {
    auto it = graphs.find(bucket);
    if (it == graphs.end()) it = graphs.emplace(bucket, capture_graph(shape)).first;
    check_cuda(cudaGraphLaunch(it->second, stream), "graph launch");
    ++stats.graph_steps;
  } else {
    if (bucket > 0) warmed.insert(bucket);  // the next step of this size is captured
    enqueue_forward(shape);
    ++stats.eager_steps;
  }
  check_cuda(cudaMemcpyAsync(results_h.data(), results.data(),
                             static_cast<size_t>(n_real) * sizeof(cuda::SampleResult),
                             cudaMemcpyDeviceToHost, stream),
             "reading sampled tokens");
  // Top logprobs are rare and at most kMaxTopLogprobs per row: the rows that ask are copied to
  // the host and ranked there by the CPU runner's function (sampling row i's logits are row i of
  // `logits`, graph padding rows come after the real ones).
  const size_t V = static_cast<size_t>(cfg.vocab_size);
  std::vector<int32_t> top_rows;
  for (size_t i = 0; i < rows.size(); ++i) {
    if (rows[i].top_logprobs > 0) top_rows.push_back(static_cast<int32_t>(i));
  }
  if (!top_rows.empty()) {
    top_logits_host.resize(top_rows.size() * V);
    for (size_t j = 0; j < top_rows.size(); ++j) {
      check_cuda(cudaMemcpyAsync(top_logits_host.data() + j * V,
                                 logits.as<float>() + static_cast<size_t>(top_rows[j]) * V,
                                 V * sizeof(float), cudaMemcpyDeviceToHost, stream),
                 "reading logits for top logprobs");
    }
  }
  check_cuda(cudaStreamSynchronize(stream), "forward step");
  if (capture_range) check_cuda(cudaProfilerStop(), "cudaProfilerStop");
  if (profiled) {
    double parts[kParts] = {};
    profiled->timeline->collect(parts);
    SparseStepProfile& pr = sparse->profile();
    ++pr.steps;
    pr.plan_s += parts[kPlan];
    pr.summarize_s += parts[kSummarize];
    pr.score_s += parts[kScore];
    pr.select_s += parts[kSelect];
    if (sparse->fuses_select(0, shape.decode_seqs * Hkv)) ++pr.fused_select_steps;
    pr.attention_s += parts[kSparseAttention];
    pr.dense_attention_s += parts[kDenseAttention];
    pr.step_s += parts[kStep];
  }
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
                                 int32_t num_pages, const CudaRunnerOptions& options)
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
  m.sparse = std::make_unique<CudaSparseFlows>(std::move(flows), m.cfg, m.geo, m.num_pages + 1);
  m.lay_out_metadata();
  if (const char* env = std::getenv("VORTEX_FLOW_PROFILE_EVERY")) m.profile_every = std::atoi(env);
  if (const char* env = std::getenv("VORTEX_SPARSE_SPLITS"))
    m.sparse_splits_override = std::atoi(env);
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
  const DeviceWeights& w = impl_->w;
  const ModelConfig& c = impl_->cfg;
  return w.bytes() - w.embed.bytes() - w.lm_head_own.bytes() +
         static_cast<size_t>(c.vocab_size) * c.hidden_size * sizeof(bf16_t);
}

void CudaModelRunner::read_kv_block(int32_t layer, int32_t page, int32_t kv_head, float* k,
                                    float* v) const {
  const Impl& m = *impl_;
  const KvGeometry& g = m.geo;
  VORTEX_ASSERT(layer >= 0 && layer < g.num_layers && page >= 0 && page < m.num_pages &&
                kv_head >= 0 && kv_head < g.num_kv_heads);
  const size_t n = static_cast<size_t>(g.page_size) * g.head_dim;
  const int64_t off = layer * m.layer_elems() +
                      (int64_t{page} * g.num_kv_heads + kv_head) * static_cast<int64_t>(n);
  std::vector<uint16_t> buf(n);
  check_cuda(cudaStreamSynchronize(m.stream), "read_kv_block");
  for (int which = 0; which < 2; ++which) {
    const bf16_t* src = (which == 0 ? m.kv_k : m.kv_v).as<bf16_t>() + off;
    check_cuda(cudaMemcpy(buf.data(), src, n * 2, cudaMemcpyDeviceToHost), "read_kv_block");
    float* dst = which == 0 ? k : v;
    for (size_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(buf[i]);
  }
}

const CudaModelRunner::Stats& CudaModelRunner::stats() const {
  return impl_->stats;
}

}  // namespace vortex
