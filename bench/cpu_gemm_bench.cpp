// Kernel-level benchmark of the CPU GEMMs: the projections of a preset model (x[M, K] · wᵀ with
// w [N, K]) on each instruction-set path this CPU supports, in GFLOP/s, and, where Debian's
// OpenBLAS can be loaded, its sgemm on the same shapes in f32 (the rate the CPU targets are set
// against). Also the M = 1 product (decode) in GB/s of weights read. Median of the runs.
// OpenBLAS picks its kernels from OPENBLAS_CORETYPE when it loads, so `--isa avx2` compares with
// its Haswell (AVX2) kernels, `--isa avx512` with SkylakeX and `--isa baseline` with Prescott
// (SSE3); `--isa all` with whatever OpenBLAS picks for this CPU.
#include <dlfcn.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "core/rng.h"
#include "core/thread_pool.h"
#include "kernels/cpu/cpu_kernels.h"
#include "model/presets.h"

using namespace vortex;

namespace {

struct Product {
  std::string name;
  int64_t n, k;
};

double median_seconds(const std::function<void()>& fn, int runs) {
  fn();  // warm-up: caches, page faults, thread wake-up
  std::vector<double> s;
  for (int i = 0; i < runs; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    s.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(s.begin(), s.end());
  return s[s.size() / 2];
}

Tensor random_weight(DType dtype, int64_t n, int64_t k, Rng& rng) {
  Tensor t = Tensor::empty(dtype, {n, k});
  for (int64_t i = 0; i < n * k; ++i) {
    const float v = rng.normal() * 0.05f;
    if (dtype == DType::kF32)
      t.data_as<float>()[i] = v;
    else if (dtype == DType::kBF16)
      t.data_as<uint16_t>()[i] = f32_to_bf16(v);
    else
      t.data_as<uint16_t>()[i] = f32_to_f16(v);
  }
  return t;
}

// cblas_sgemm from a dlopen'd OpenBLAS: no build dependency, and the library is optional.
using SgemmFn = void (*)(int, int, int, int, int, int, float, const float*, int, const float*, int,
                         float, float*, int);
struct OpenBlas {
  SgemmFn sgemm = nullptr;
  std::string core;
};

// OpenBLAS reads OPENBLAS_CORETYPE when it loads; unless the user chose one, a single path is
// compared with OpenBLAS's kernels for the same instruction set.
OpenBlas load_openblas(const std::string& isa) {
  if (std::getenv("OPENBLAS_CORETYPE") == nullptr) {
    if (isa == "avx512") setenv("OPENBLAS_CORETYPE", "SkylakeX", 1);
    if (isa == "avx2") setenv("OPENBLAS_CORETYPE", "Haswell", 1);
    if (isa == "baseline") setenv("OPENBLAS_CORETYPE", "Prescott", 1);  // SSE3, its oldest x86-64
  }
  OpenBlas ob;
  void* lib = nullptr;
  for (const char* name : {"libopenblas.so.0", "libopenblas.so"})
    if ((lib = dlopen(name, RTLD_NOW | RTLD_LOCAL))) break;
  if (!lib) return ob;
  ob.sgemm = reinterpret_cast<SgemmFn>(dlsym(lib, "cblas_sgemm"));
  using CoreFn = char* (*)();
  if (auto core = reinterpret_cast<CoreFn>(dlsym(lib, "openblas_get_corename"))) ob.core = core();
  return ob;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"CPU GEMM benchmark: Vortex's kernels on each instruction-set path, and OpenBLAS"};
  std::string model = "qwen3-0.6b", dtype_name_arg = "bf16", isa_arg = "all";
  int64_t rows = 512;
  int runs = 5, threads = 0;
  bool openblas = true;
  app.add_option("--model", model, "preset whose projections are measured")->capture_default_str();
  app.add_option("--rows", rows, "rows of x (tokens of a prefill)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  app.add_option("--dtype", dtype_name_arg, "weight dtype: bf16, f16 or f32")
      ->capture_default_str()
      ->check(CLI::IsMember({"bf16", "f16", "f32"}));
  app.add_option("--isa", isa_arg, "path: all (every supported one), baseline, avx2, avx512")
      ->capture_default_str()
      ->check(CLI::IsMember({"all", "baseline", "avx2", "avx512"}));
  app.add_option("--runs", runs, "timed runs per product (median)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  app.add_option("--threads", threads, "CPU threads (default: all)")->check(CLI::Range(0, 1024));
  app.add_flag("!--no-openblas", openblas, "skip the OpenBLAS comparison");
  CLI11_PARSE(app, argc, argv);

  try {
    if (threads > 0) ThreadPool::set_global_threads(threads);
    const auto config = preset_config(model);
    if (!config) fail_usage("--model ", model, ": not a preset");
    DType dtype = DType::kBF16;
    parse_dtype(dtype_name_arg == "bf16"  ? "BF16"
                : dtype_name_arg == "f16" ? "F16"
                                          : "F32",
                &dtype);
    const ModelConfig& c = *config;
    const std::vector<Product> shapes = {{"q_proj", c.q_dim(), c.hidden_size},
                                         {"k_proj", c.kv_dim(), c.hidden_size},
                                         {"v_proj", c.kv_dim(), c.hidden_size},
                                         {"o_proj", c.hidden_size, c.q_dim()},
                                         {"gate_proj", c.intermediate_size, c.hidden_size},
                                         {"up_proj", c.intermediate_size, c.hidden_size},
                                         {"down_proj", c.hidden_size, c.intermediate_size}};
    std::vector<cpu::CpuIsa> isas;
    for (cpu::CpuIsa isa : cpu::supported_cpu_isas())
      if (isa_arg == "all" || cpu::cpu_isa_name(isa) == isa_arg) isas.push_back(isa);
    if (isas.empty()) fail_usage("--isa ", isa_arg, ": this CPU cannot run that path");

    Rng rng(1);
    std::vector<Tensor> weights;
    std::vector<cpu::PackedWeight> packed;
    int64_t max_n = 0, max_k = 0;
    for (const Product& s : shapes) {
      weights.push_back(random_weight(dtype, s.n, s.k, rng));
      packed.emplace_back(weights.back());
      max_n = std::max(max_n, s.n);
      max_k = std::max(max_k, s.k);
    }
    std::vector<float> x(static_cast<size_t>(rows * max_k)), y(static_cast<size_t>(rows * max_n));
    for (float& v : x) v = rng.normal();

    std::printf("model %s, %s weights, M = %lld rows, %d threads\n", model.c_str(),
                dtype_name(dtype).data(), static_cast<long long>(rows),
                ThreadPool::global().num_threads());
    std::printf("%-22s", "GFLOP/s (prefill)");
    for (const Product& s : shapes) std::printf(" %10s", s.name.c_str());
    std::printf(" %10s %14s\n", "all", "GB/s (M = 1)");

    // bytes_per_weight: what the product reads per weight (OpenBLAS reads f32).
    auto report = [&](const std::string& label, double bytes_per_weight,
                      const std::function<void(size_t, int64_t)>& product) {
      std::printf("%-22s", label.c_str());
      double flops = 0, seconds = 0, bytes = 0, gemv_seconds = 0;
      for (size_t i = 0; i < shapes.size(); ++i) {
        const double s = median_seconds([&] { product(i, rows); }, runs);
        const double f = 2.0 * static_cast<double>(rows) * shapes[i].n * shapes[i].k;
        flops += f;
        seconds += s;
        std::printf(" %10.1f", f / s / 1e9);
        gemv_seconds += median_seconds([&] { product(i, 1); }, std::max(runs, 20));
        bytes += bytes_per_weight * static_cast<double>(weights[i].numel());
      }
      std::printf(" %10.1f %14.1f\n", flops / seconds / 1e9, bytes / gemv_seconds / 1e9);
    };

    for (cpu::CpuIsa isa : isas) {
      const cpu::CpuKernels& k = cpu::cpu_kernels_for(isa);
      const std::string label = "vortex " + std::string(cpu::cpu_isa_name(isa));
      report(label, static_cast<double>(dtype_size(dtype)), [&](size_t i, int64_t m) {
        k.linear(x.data(), m, shapes[i].k, packed[i], nullptr, y.data());
      });
    }
    if (openblas) {
      const OpenBlas ob = load_openblas(isa_arg);
      if (!ob.sgemm) {
        std::printf("OpenBLAS: not found (apt-get install libopenblas0) - skipped\n");
      } else {
        std::vector<std::vector<float>> w32;
        for (const Tensor& w : weights) {
          w32.emplace_back(static_cast<size_t>(w.numel()));
          convert_to_f32(w.dtype(), w.data(), w32.back().data(), w32.back().size());
        }
        constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112;
        report("openblas " + ob.core + " (f32)", 4.0, [&](size_t i, int64_t m) {
          const int n = static_cast<int>(shapes[i].n), kk = static_cast<int>(shapes[i].k);
          ob.sgemm(kRowMajor, kNoTrans, kTrans, static_cast<int>(m), n, kk, 1.0f, x.data(), kk,
                   w32[i].data(), kk, 0.0f, y.data(), n);
        });
      }
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "vortex_cpu_gemm_bench: %s\n", e.what());
    return static_cast<int>(e.exit_code());
  }
  return 0;
}
