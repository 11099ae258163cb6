// visattn — dlopen'd cuBLAS (see blas.h).
#include "common/compat.cuh"

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

#if !VA_IS_EMU
#include <dlfcn.h>
#endif

#include "backend/blas.h"

VA_CUDA_NAMESPACE_BEGIN

namespace {
std::once_flag gBlasOnce;
BlasLib* gBlas = nullptr;
std::string gBlasWhy = "not loaded yet";

// cuBLAS enum values (cublas_api.h).
constexpr int kOpN = 0, kOpT = 1;
constexpr int kDefaultMath = 0;  // CUBLAS_DEFAULT_MATH: fp32 for Sgemm (TF32 needs opting in)

#if !VA_IS_EMU
void loadBlas() {
  const char* env = std::getenv("VISATTN_CUBLAS");
  if (env && std::strcmp(env, "0") == 0) {
    gBlasWhy = "disabled by VISATTN_CUBLAS=0";
    return;
  }
  const char* names[] = {"libcublas.so.13", "libcublas.so.12", "libcublas.so"};
  void* lib = nullptr;
  const char* found = nullptr;
  for (const char* n : names) {
    lib = dlopen(n, RTLD_NOW | RTLD_LOCAL);
    if (lib) {
      found = n;
      break;
    }
  }
  if (!lib) {
    gBlasWhy = "libcublas.so.13/.12 not found";
    return;
  }
  BlasLib* b = new BlasLib();
  b->create = reinterpret_cast<BlasLib::CreateFn>(dlsym(lib, "cublasCreate_v2"));
  b->destroy = reinterpret_cast<BlasLib::DestroyFn>(dlsym(lib, "cublasDestroy_v2"));
  b->setStream = reinterpret_cast<BlasLib::SetStreamFn>(dlsym(lib, "cublasSetStream_v2"));
  b->setMathMode = reinterpret_cast<BlasLib::SetMathModeFn>(dlsym(lib, "cublasSetMathMode"));
  b->sgemmStridedBatched =
      reinterpret_cast<BlasLib::GemmFn>(dlsym(lib, "cublasSgemmStridedBatched"));
  if (!b->create || !b->destroy || !b->setStream || !b->sgemmStridedBatched) {
    gBlasWhy = std::string(found) + " lacks a needed entry point";
    delete b;
    dlclose(lib);
    return;
  }
  gBlas = b;  // the library stays loaded for the life of the process
  gBlasWhy = std::string("loaded ") + found;
}
#endif
}  // namespace

const BlasLib* BlasLib::get() {
#if VA_IS_EMU
  return nullptr;
#else
  std::call_once(gBlasOnce, loadBlas);
  return gBlas;
#endif
}

std::string BlasLib::describe() {
#if VA_IS_EMU
  return "emulator: own GEMM";
#else
  get();
  return gBlasWhy;
#endif
}

// The members below only call through the function pointers, so they also run under the emulator
// (where a test may install a stand-in library with setBlasForTesting).
bool BlasLib::createHandle(void** handle, cudaStream_t stream) const {
  void* h = nullptr;
  if (create(&h) != 0 || !h) return false;
  if (setStream(h, stream) != 0) {
    destroy(h);
    return false;
  }
  if (setMathMode) setMathMode(h, kDefaultMath);
  *handle = h;
  return true;
}

void BlasLib::destroyHandle(void* handle) const {
  if (handle) destroy(handle);
}

int BlasLib::gemmRowMajor(void* handle, bool transA, bool transB, int M, int N, int K, float alpha,
                          const float* A, long long strideA, const float* B, long long strideB,
                          float beta, float* C, long long strideC, int batch) const {
  // Row-major C = op(A)·op(B) is column-major Cᵀ = op(B)ᵀ·op(A)ᵀ: pass B first, m = N, n = M.
  // Column-major views: B (row-major [K,N], or [N,K] when transB) is an N×K / K×N matrix with
  // leading dimension N (or K); likewise A with K (or M).
  const int ldb = transB ? K : N;
  const int lda = transA ? M : K;
  return sgemmStridedBatched(handle, transB ? kOpT : kOpN, transA ? kOpT : kOpN, N, M, K, &alpha,
                             B, ldb, strideB, A, lda, strideA, &beta, C, N, strideC, batch);
}

VA_CUDA_NAMESPACE_END
