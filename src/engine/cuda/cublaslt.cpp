#include "engine/cuda/cublaslt.h"

#include <cublasLt.h>
#include <dlfcn.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "core/error.h"

namespace vortex {

// The few cuBLASLt entry points the engine uses, resolved from the shared library.
struct CublasLt::Api {
  decltype(&cublasLtCreate) create;
  decltype(&cublasLtDestroy) destroy;
  decltype(&cublasLtMatmulDescCreate) desc_create;
  decltype(&cublasLtMatmulDescDestroy) desc_destroy;
  decltype(&cublasLtMatmulDescSetAttribute) desc_set;
  decltype(&cublasLtMatrixLayoutCreate) layout_create;
  decltype(&cublasLtMatrixLayoutDestroy) layout_destroy;
  decltype(&cublasLtMatmulPreferenceCreate) pref_create;
  decltype(&cublasLtMatmulPreferenceDestroy) pref_destroy;
  decltype(&cublasLtMatmulPreferenceSetAttribute) pref_set;
  decltype(&cublasLtMatmulAlgoGetHeuristic) heuristic;
  decltype(&cublasLtMatmul) matmul;
};

struct CublasLt::Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
};

namespace {

constexpr size_t kWorkspaceBytes = size_t{32} << 20;

void check_lt(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS)
    fail("cuBLASLt error in ", what, ": status ", static_cast<int>(s));
}

template <class F>
void resolve(void* lib, const char* name, F& fn) {
  fn = reinterpret_cast<F>(dlsym(lib, name));
  if (!fn) fail("cuBLASLt library lacks ", name, ": ", dlerror());
}

}  // namespace

CublasLt::CublasLt() : api_(std::make_unique<Api>()) {
  std::vector<std::string> names;
  if (const char* env = std::getenv("VORTEX_CUBLASLT")) names.push_back(env);
  names.push_back("libcublasLt.so.13");
  names.push_back("/usr/local/cuda/lib64/libcublasLt.so.13");
  names.push_back("libcublasLt.so");
  std::string errors;
  for (const std::string& n : names) {
    lib_ = dlopen(n.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (lib_) break;
    errors += str_cat("\n  ", dlerror());
  }
  if (!lib_) {
    fail(
        "cannot load cuBLASLt (CUDA 13), needed for --device cuda; set VORTEX_CUBLASLT to the "
        "path of libcublasLt.so.13. Tried:",
        errors);
  }
  Api& a = *api_;
  resolve(lib_, "cublasLtCreate", a.create);
  resolve(lib_, "cublasLtDestroy", a.destroy);
  resolve(lib_, "cublasLtMatmulDescCreate", a.desc_create);
  resolve(lib_, "cublasLtMatmulDescDestroy", a.desc_destroy);
  resolve(lib_, "cublasLtMatmulDescSetAttribute", a.desc_set);
  resolve(lib_, "cublasLtMatrixLayoutCreate", a.layout_create);
  resolve(lib_, "cublasLtMatrixLayoutDestroy", a.layout_destroy);
  resolve(lib_, "cublasLtMatmulPreferenceCreate", a.pref_create);
  resolve(lib_, "cublasLtMatmulPreferenceDestroy", a.pref_destroy);
  resolve(lib_, "cublasLtMatmulPreferenceSetAttribute", a.pref_set);
  resolve(lib_, "cublasLtMatmulAlgoGetHeuristic", a.heuristic);
  resolve(lib_, "cublasLtMatmul", a.matmul);
  cublasLtHandle_t h = nullptr;
  check_lt(a.create(&h), "cublasLtCreate");
  handle_ = h;
  workspace_ = DeviceBuffer(kWorkspaceBytes, "cuBLASLt workspace");
}

CublasLt::~CublasLt() {
  for (auto& [key, p] : plans_) {
    api_->layout_destroy(p->a);
    api_->layout_destroy(p->b);
    api_->layout_destroy(p->c);
    api_->desc_destroy(p->desc);
  }
  if (handle_) api_->destroy(static_cast<cublasLtHandle_t>(handle_));
  // The library stays loaded: cuBLASLt may still run exit handlers.
}

CublasLt::Plan& CublasLt::plan(int64_t M, int64_t N, int64_t K, bool y_f32) {
  auto key = std::make_tuple(M, N, K, y_f32);
  auto it = plans_.find(key);
  if (it != plans_.end()) return *it->second;
  // Row-major y = x · wᵀ is column-major yᵀ[N, M] = w[N, K] · xᵀ: A = w (stored K x N
  // column-major, transposed), B = xᵀ (K x M column-major), C = yᵀ (N x M).
  auto p = std::make_unique<Plan>();
  const Api& a = *api_;
  check_lt(a.desc_create(&p->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F), "MatmulDescCreate");
  cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  check_lt(a.desc_set(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)), "TRANSA");
  check_lt(a.desc_set(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)), "TRANSB");
  check_lt(a.layout_create(&p->a, CUDA_R_16BF, K, N, K), "layout A");
  check_lt(a.layout_create(&p->b, CUDA_R_16BF, K, M, K), "layout B");
  check_lt(a.layout_create(&p->c, y_f32 ? CUDA_R_32F : CUDA_R_16BF, N, M, N), "layout C");
  cublasLtMatmulPreference_t pref = nullptr;
  check_lt(a.pref_create(&pref), "PreferenceCreate");
  size_t ws = kWorkspaceBytes;
  a.pref_set(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws));
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  cublasStatus_t s = a.heuristic(static_cast<cublasLtHandle_t>(handle_), p->desc, p->a, p->b, p->c,
                                 p->c, pref, 1, &result, &found);
  a.pref_destroy(pref);
  if (s != CUBLAS_STATUS_SUCCESS || found == 0) {
    fail("cuBLASLt has no bf16 GEMM for M=", M, " N=", N, " K=", K, " (status ",
         static_cast<int>(s), ")");
  }
  p->algo = result.algo;
  return *(plans_[key] = std::move(p));
}

void CublasLt::gemm(const cuda::bf16_t* x, int64_t M, int64_t K, const cuda::bf16_t* w, int64_t N,
                    void* y, bool y_f32, cudaStream_t stream) {
  if (M == 0) return;
  Plan& p = plan(M, N, K, y_f32);
  const float alpha = 1.0f, beta = 0.0f;
  check_lt(
      api_->matmul(static_cast<cublasLtHandle_t>(handle_), p.desc, &alpha, w, p.a, x, p.b, &beta, y,
                   p.c, y, p.c, &p.algo, workspace_.data(), workspace_.bytes(), stream),
      "cublasLtMatmul");
}

}  // namespace vortex
