// Kernel-level benchmarks of the CUDA backend, with the two numbers of each (bytes or FLOPs
// over the measured ceiling): device copy bandwidth, bf16 GEMM rate, dense paged decode
// attention at Qwen3-1.7B geometry, causal prefill attention. Random (non-zero) data, pages in
// shuffled order, CUDA-event timing, median of the runs. End-to-end figures come from
// `vortex bench`. Usage: vortex_cuda_bench [--only GROUP] [--decode-kernel mma3|mma4|scalar]
#include <cuda_runtime_api.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <numeric>
#include <string>
#include <vector>

#include "core/cuda/cuda_util.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/rng.h"
#include "core/thread_pool.h"
#include "engine/cuda/cublaslt.h"
#include "engine/cuda/cuda_model_runner.h"
#include "engine/loaded_model.h"
#include "kernels/cuda/attention.h"
#include "kernels/cuda/skinny_gemm.h"
#include "kv/page_pool.h"

using namespace vortex;

namespace {

// Median milliseconds of `runs` timed calls of fn after `warmup` untimed ones.
double time_ms(const std::function<void()>& fn, int warmup = 3, int runs = 20) {
  for (int i = 0; i < warmup; ++i) fn();
  check_cuda(cudaDeviceSynchronize(), "warm-up");
  cudaEvent_t a, b;
  cudaEventCreate(&a);
  cudaEventCreate(&b);
  std::vector<float> ms;
  for (int i = 0; i < runs; ++i) {
    cudaEventRecord(a);
    fn();
    cudaEventRecord(b);
    check_cuda(cudaEventSynchronize(b), "timed run");
    float t = 0;
    cudaEventElapsedTime(&t, a, b);
    ms.push_back(t);
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

// Fills n bf16 values on the device with N(0, 1) noise (a 32 MiB random block, tiled).
void fill_random(cuda::bf16_t* dst, size_t n, uint64_t seed) {
  const size_t block = size_t{16} << 20;
  std::vector<uint16_t> host(std::min(n, block));
  Rng rng(seed);
  for (auto& v : host) v = f32_to_bf16(rng.normal());
  for (size_t at = 0; at < n; at += host.size()) {
    const size_t m = std::min(host.size(), n - at);
    check_cuda(cudaMemcpy(dst + at, host.data(), m * 2, cudaMemcpyHostToDevice), "fill");
  }
}

struct Geometry {
  int Hq, Hkv, D, P;
};

void print_row(const char* what, const std::string& shape, double ms, double amount,
               const char* unit, double ceiling) {
  const double rate = amount / (ms * 1e-3);
  std::printf("%-28s %-30s %9.3f ms %9.1f %s  (%5.1f%% of %.1f)\n", what, shape.c_str(), ms,
              rate / 1e12, unit, 100.0 * rate / ceiling, ceiling / 1e12);
  std::printf(
      "JSON {\"bench\":\"%s\",\"shape\":\"%s\",\"ms\":%.4f,\"rate\":%.4e,\"unit\":\"%s\","
      "\"fraction_of_ceiling\":%.4f}\n",
      what, shape.c_str(), ms, rate, unit, rate / ceiling);
}

void bench_decode(const Geometry& g, int batch, int context, double bandwidth,
                  cuda::DecodeKernel kernel) {
  const int pages_per_seq = (context + g.P - 1) / g.P;
  const int num_pages = batch * pages_per_seq;
  const int64_t page_elems = int64_t{g.Hkv} * g.P * g.D;
  DeviceBuffer k(size_t(num_pages) * page_elems * 2, "K"),
      v(size_t(num_pages) * page_elems * 2, "V");
  fill_random(k.as<cuda::bf16_t>(), size_t(num_pages) * page_elems, 1);
  fill_random(v.as<cuda::bf16_t>(), size_t(num_pages) * page_elems, 2);
  std::vector<int32_t> pages(num_pages);
  std::iota(pages.begin(), pages.end(), 0);
  Rng rng(3);
  for (int i = num_pages - 1; i > 0; --i) std::swap(pages[i], pages[rng.next_u64() % (i + 1)]);
  std::vector<int32_t> q_rows(batch), row_off, row_tok;
  for (int b = 0; b < batch; ++b) {
    q_rows[b] = b;
    for (int h = 0; h < g.Hkv; ++h) {
      row_off.push_back(b * pages_per_seq);
      row_tok.push_back(context);
    }
  }
  DeviceBuffer d_pages(pages.size() * 4), d_rows(q_rows.size() * 4), d_off(row_off.size() * 4),
      d_tok(row_tok.size() * 4), q(size_t(batch) * g.Hq * g.D * 2),
      out(size_t(batch) * g.Hq * g.D * 2);
  cudaMemcpy(d_pages.data(), pages.data(), d_pages.bytes(), cudaMemcpyHostToDevice);
  cudaMemcpy(d_rows.data(), q_rows.data(), d_rows.bytes(), cudaMemcpyHostToDevice);
  cudaMemcpy(d_off.data(), row_off.data(), d_off.bytes(), cudaMemcpyHostToDevice);
  cudaMemcpy(d_tok.data(), row_tok.data(), d_tok.bytes(), cudaMemcpyHostToDevice);
  fill_random(q.as<cuda::bf16_t>(), size_t(batch) * g.Hq * g.D, 4);
  const int G = g.Hq / g.Hkv;
  const int splits =
      cuda::decode_attention_num_splits(int64_t{batch} * g.Hkv, context, g.D, G, kernel);
  DeviceBuffer ws(cuda::decode_attention_workspace_bytes(batch, g.Hq, g.D, splits));
  cuda::DevicePagedKv kv{k.as<cuda::bf16_t>(), v.as<cuda::bf16_t>(), g.P, g.Hkv, g.D,
                         page_elems,           int64_t{g.P} * g.D};
  cuda::DecodeAttentionArgs a;
  a.q = q.as<cuda::bf16_t>();
  a.out = out.as<cuda::bf16_t>();
  a.q_rows = d_rows.as<int32_t>();
  a.row_page_offset = d_off.as<int32_t>();
  a.row_num_tokens = d_tok.as<int32_t>();
  a.pages = d_pages.as<int32_t>();
  a.num_seqs = batch;
  a.num_q_heads = g.Hq;
  a.num_splits = splits;
  a.scale = 1.0f / std::sqrt(float(g.D));
  a.workspace = ws.as<float>();
  a.kernel = kernel;
  const double ms = time_ms([&] { check_cuda(cuda::decode_attention(a, kv, nullptr), "decode"); });
  const double bytes = 2.0 * double(batch) * context * g.Hkv * g.D * 2;
  char shape[96];
  std::snprintf(shape, sizeof shape, "B%d x %d, P%d, %d/%dx%d, s%d", batch, context, g.P, g.Hq,
                g.Hkv, g.D, splits);
  print_row("decode_attention", shape, ms, bytes, "TB/s", bandwidth);
}

void bench_prefill(const Geometry& g, int tokens, double matmul_rate) {
  const int num_pages = (tokens + g.P - 1) / g.P;
  const int64_t page_elems = int64_t{g.Hkv} * g.P * g.D;
  DeviceBuffer k(size_t(num_pages) * page_elems * 2), v(size_t(num_pages) * page_elems * 2),
      q(size_t(tokens) * g.Hq * g.D * 2), out(size_t(tokens) * g.Hq * g.D * 2);
  fill_random(k.as<cuda::bf16_t>(), size_t(num_pages) * page_elems, 5);
  fill_random(v.as<cuda::bf16_t>(), size_t(num_pages) * page_elems, 6);
  fill_random(q.as<cuda::bf16_t>(), size_t(tokens) * g.Hq * g.D, 7);
  std::vector<int32_t> pages(num_pages);
  std::iota(pages.begin(), pages.end(), 0);
  const int tpb = cuda::prefill_attention_block_tokens(g.Hq / g.Hkv);
  std::vector<int32_t> bseq, bstart;
  for (int s = (tokens - 1) / tpb * tpb; s >= 0; s -= tpb) {  // longest first
    bseq.push_back(0);
    bstart.push_back(s);
  }
  std::vector<int32_t> seq = {0, tokens, tokens, 0};  // q_begin, q_len, kv_len, page offset
  DeviceBuffer d_pages(pages.size() * 4), d_bseq(bseq.size() * 4), d_bstart(bstart.size() * 4),
      d_seq(seq.size() * 4);
  cudaMemcpy(d_pages.data(), pages.data(), d_pages.bytes(), cudaMemcpyHostToDevice);
  cudaMemcpy(d_bseq.data(), bseq.data(), d_bseq.bytes(), cudaMemcpyHostToDevice);
  cudaMemcpy(d_bstart.data(), bstart.data(), d_bstart.bytes(), cudaMemcpyHostToDevice);
  cudaMemcpy(d_seq.data(), seq.data(), d_seq.bytes(), cudaMemcpyHostToDevice);
  cuda::DevicePagedKv kv{k.as<cuda::bf16_t>(), v.as<cuda::bf16_t>(), g.P, g.Hkv, g.D,
                         page_elems,           int64_t{g.P} * g.D};
  cuda::PrefillAttentionArgs a;
  a.q = q.as<cuda::bf16_t>();
  a.out = out.as<cuda::bf16_t>();
  a.block_seq = d_bseq.as<int32_t>();
  a.block_q_start = d_bstart.as<int32_t>();
  a.seq_q_begin = d_seq.as<int32_t>();
  a.seq_q_len = d_seq.as<int32_t>() + 1;
  a.seq_kv_len = d_seq.as<int32_t>() + 2;
  a.seq_page_offset = d_seq.as<int32_t>() + 3;
  a.pages = d_pages.as<int32_t>();
  a.num_blocks = static_cast<int32_t>(bseq.size());
  a.num_q_heads = g.Hq;
  a.scale = 1.0f / std::sqrt(float(g.D));
  const double ms =
      time_ms([&] { check_cuda(cuda::prefill_attention(a, kv, nullptr), "prefill"); });
  const double flops = 4.0 * g.D * g.Hq * (double(tokens) * (tokens + 1) / 2);
  char shape[96];
  std::snprintf(shape, sizeof shape, "%d tokens causal, %d/%dx%d", tokens, g.Hq, g.Hkv, g.D);
  print_row("prefill_attention", shape, ms, flops, "TFLOP/s", matmul_rate);
}

double bench_gemm(CublasLt& blas, int64_t M, int64_t N, int64_t K, double ceiling) {
  DeviceBuffer x(size_t(M) * K * 2), w(size_t(N) * K * 2), y(size_t(M) * N * 2);
  fill_random(x.as<cuda::bf16_t>(), size_t(M) * K, 8);
  fill_random(w.as<cuda::bf16_t>(), size_t(N) * K, 9);
  const double ms = time_ms([&] {
    blas.gemm(x.as<cuda::bf16_t>(), M, K, w.as<cuda::bf16_t>(), N, y.data(), false, nullptr);
  });
  const double flops = 2.0 * M * N * K;
  char shape[96];
  std::snprintf(shape, sizeof shape, "%ldx%ldx%ld bf16", long(M), long(N), long(K));
  print_row("gemm", shape, ms, flops, "TFLOP/s", ceiling > 0 ? ceiling : flops / (ms * 1e-3));
  return flops / (ms * 1e-3);
}

// Decode-sized projections (M tokens times each weight matrix of Qwen3-1.7B) through cuBLASLt
// and the skinny kernel. The weights rotate through copies that together exceed L2, as a model's
// layers do, so every call reads its weights from memory; a timing covers 10 calls.
void bench_decode_gemms(CublasLt& blas, double bandwidth) {
  struct Shape {
    const char* name;
    int64_t N, K;
  };
  const Shape shapes[] = {{"qkv", 4096, 2048},
                          {"o_proj", 2048, 2048},
                          {"gate_up", 12288, 2048},
                          {"down", 2048, 6144},
                          {"lm_head", 151936, 2048}};
  const size_t ws_floats = size_t{4} << 20;
  DeviceBuffer ws(ws_floats * sizeof(float)), x(size_t{64} * 6144 * 2), y(size_t{64} * 151936 * 4);
  fill_random(x.as<cuda::bf16_t>(), size_t{64} * 6144, 10);
  constexpr int kCalls = 10;
  for (const Shape& s : shapes) {
    const size_t bytes = size_t(s.N) * s.K * 2;
    const size_t copies = std::min<size_t>(16, (size_t{256} << 20) / bytes + 1);
    std::vector<DeviceBuffer> w;
    for (size_t c = 0; c < copies; ++c) {
      w.emplace_back(bytes, "weights");
      fill_random(w.back().as<cuda::bf16_t>(), bytes / 2, 11 + c);
    }
    for (int64_t M : {1, 32, 64}) {
      size_t i = 0;
      const double lt_ms = time_ms([&] {
        for (int r = 0; r < kCalls; ++r)
          blas.gemm(x.as<cuda::bf16_t>(), M, s.K, w[i++ % copies].as<cuda::bf16_t>(), s.N, y.data(),
                    true, nullptr);
      });
      const double sk_ms = time_ms([&] {
        for (int r = 0; r < kCalls; ++r)
          check_cuda(
              cuda::skinny_gemm(x.as<cuda::bf16_t>(), M, s.K, w[i++ % copies].as<cuda::bf16_t>(),
                                s.N, y.as<float>(), ws.as<float>(), ws_floats, nullptr),
              "skinny GEMM");
      });
      char shape[96];
      std::snprintf(shape, sizeof shape, "%s M=%ld %ldx%ld", s.name, long(M), long(s.N), long(s.K));
      print_row("gemm_decode_cublaslt", shape, lt_ms / kCalls, double(bytes), "TB/s", bandwidth);
      print_row("gemm_decode_skinny", shape, sk_ms / kCalls, double(bytes), "TB/s", bandwidth);
    }
  }
}

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// The whole model through CudaModelRunner (the Engine's runner), driven step by step: prefill of
// `batch` prompts of `context` tokens (one prompt per step), then full-batch decode steps
// (replayed from a CUDA graph after the first two). Floor of a decode step: (weights + the KV
// read) / the measured copy bandwidth.
void bench_model(const std::string& preset, int batch, int context, int decode_steps,
                 double bandwidth) {
  LoadOptions lo;
  lo.random_weights = true;
  LoadedModel model = load_model(preset, lo);
  const ModelConfig& c = model.config;
  const int P = 16;
  const KvGeometry geo{c.num_layers, c.num_kv_heads, c.head_dim, P};
  const int32_t pages_per_req = (context + decode_steps + P) / P;
  const int32_t num_pages = batch * pages_per_req;
  CudaModelRunner runner(model, geo, num_pages);
  PagePool pool(num_pages);
  std::vector<Request> reqs(static_cast<size_t>(batch));
  Rng rng(11);
  for (Request& r : reqs) {
    r.prompt.resize(static_cast<size_t>(context));
    for (int32_t& t : r.prompt) t = static_cast<int32_t>(rng.next_u64() % c.vocab_size);
    VORTEX_ASSERT(r.blocks.reserve(pool, context + decode_steps + 1, P));
  }
  SamplingParams greedy;
  Rng unused(0);
  // Prefill, one request per step; the first step warms up (plans, attributes) and is not timed.
  std::vector<double> prefill_s;
  for (size_t i = 0; i < reqs.size(); ++i) {
    const double t0 = now_s();
    auto tok = runner.step({ScheduledWork{&reqs[i], 0, context}}, {SamplingRow{&greedy, &unused}});
    if (i > 0 || reqs.size() == 1) prefill_s.push_back(now_s() - t0);
    reqs[i].output.push_back(tok[0].token);
  }
  std::sort(prefill_s.begin(), prefill_s.end());
  const double pre = prefill_s[prefill_s.size() / 2];
  std::printf("%-28s %-30s %9.3f ms %9.1f Ktok/s\n", "model_prefill",
              (preset + " " + std::to_string(context) + " tokens").c_str(), pre * 1e3,
              context / pre / 1e3);
  std::printf(
      "JSON {\"bench\":\"model_prefill\",\"model\":\"%s\",\"tokens\":%d,"
      "\"ms\":%.3f,\"tokens_per_s\":%.1f}\n",
      preset.c_str(), context, pre * 1e3, context / pre);
  // Decode.
  std::vector<double> step_s;
  for (int s = 0; s < decode_steps; ++s) {
    std::vector<ScheduledWork> work;
    std::vector<SamplingRow> rows;
    for (Request& r : reqs) {
      work.push_back({&r, r.seq_len() - 1, 1});
      rows.push_back({&greedy, &unused});
    }
    const double t0 = now_s();
    auto toks = runner.step(work, rows);
    step_s.push_back(now_s() - t0);
    for (size_t i = 0; i < reqs.size(); ++i) reqs[i].output.push_back(toks[i].token);
  }
  std::vector<double> replay(step_s.begin() + std::min<int>(3, decode_steps - 1), step_s.end());
  std::sort(replay.begin(), replay.end());
  const double p50 = replay[replay.size() / 2];
  double kv_tokens = 0;
  for (const Request& r : reqs) kv_tokens += r.seq_len() - decode_steps / 2.0;
  const double kv_bytes = kv_tokens * 2.0 * c.num_layers * c.num_kv_heads * c.head_dim * 2;
  const double bytes = static_cast<double>(runner.weight_bytes()) + kv_bytes;
  const double floor_s = bytes / bandwidth;
  char shape[96];
  std::snprintf(shape, sizeof shape, "%s B%d x %d, graphs", preset.c_str(), batch, context);
  std::printf("%-28s %-30s %9.3f ms  floor %.3f ms  ratio %.3f  (%d graph steps)\n",
              "model_decode_step", shape, p50 * 1e3, floor_s * 1e3, p50 / floor_s,
              static_cast<int>(runner.stats().graph_steps));
  std::printf(
      "JSON {\"bench\":\"model_decode_step\",\"model\":\"%s\",\"batch\":%d,"
      "\"context\":%d,\"p50_ms\":%.3f,\"floor_ms\":%.3f,\"ratio\":%.4f,"
      "\"weight_bytes\":%.0f,\"kv_bytes\":%.0f,\"tokens_per_s\":%.1f}\n",
      preset.c_str(), batch, context, p50 * 1e3, floor_s * 1e3, p50 / floor_s,
      static_cast<double>(runner.weight_bytes()), kv_bytes, batch / p50);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    // --only copy|gemm|decode_gemm|decode|decode1|prefill|model runs one group (decode1: B32 x 16K
    // only; decode_gemm: the decode-sized projections through cuBLASLt and the skinny kernel).
    std::string only, kernel_name = "mma3";
    for (int i = 1; i + 1 < argc; ++i) {
      if (std::strcmp(argv[i], "--only") == 0) only = argv[i + 1];
      if (std::strcmp(argv[i], "--decode-kernel") == 0) kernel_name = argv[i + 1];
    }
    cuda::DecodeKernel kernel = cuda::DecodeKernel::kMma3;
    if (kernel_name == "mma4")
      kernel = cuda::DecodeKernel::kMma4;
    else if (kernel_name == "scalar")
      kernel = cuda::DecodeKernel::kScalar;
    else if (kernel_name != "mma3")
      fail("--decode-kernel must be mma3, mma4 or scalar, got '", kernel_name, "'");
    auto want = [&](const char* g) { return only.empty() || only == g; };
    const std::string gpu = require_cuda_device();
    std::printf("GPU: %s\n", gpu.c_str());
    const double bw = measure_copy_bandwidth();
    std::printf("device copy bandwidth (read + write): %.3f TB/s\n", bw / 1e12);
    std::printf("JSON {\"bench\":\"copy\",\"rate\":%.4e,\"unit\":\"B/s\"}\n", bw);
    CublasLt blas;
    double mm = 7.8e14;
    if (want("gemm") || want("prefill")) {
      mm = bench_gemm(blas, 8192, 8192, 8192, 0);
      bench_gemm(blas, 32, 2 * 6144, 2048, mm);    // decode gate|up of Qwen3-1.7B
      bench_gemm(blas, 8192, 2 * 6144, 2048, mm);  // prefill gate|up
    }
    if (want("gemm") || want("decode_gemm")) bench_decode_gemms(blas, bw);
    const Geometry qwen{16, 8, 128, 16};
    if (want("decode") || want("decode1")) bench_decode(qwen, 32, 16384, bw, kernel);
    if (want("decode")) {
      bench_decode(qwen, 8, 32768, bw, kernel);
      bench_decode(qwen, 64, 4096, bw, kernel);
      bench_decode({32, 8, 128, 16}, 32, 16384, bw, kernel);  // G = 4 (Llama-3-8B style)
    }
    if (want("prefill")) {
      bench_prefill(qwen, 8192, mm);
      bench_prefill(qwen, 2048, mm);
    }
    if (want("model")) {
      bench_model("qwen3-1.7b", 4, 8192, 8, bw);     // prefill 8K
      bench_model("qwen3-1.7b", 32, 16384, 24, bw);  // decode 32 x 16K
    }
    return 0;
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
