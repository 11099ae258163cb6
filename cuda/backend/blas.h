// visattn — cuBLAS loaded at run time with dlopen (never linked). Real-GPU builds only: under the
// emulator BlasLib::get() always returns null and the project's own GEMM runs.
#pragma once
#include "common/compat.cuh"

#include <string>

#include "visattn/backend.h"

VA_CUDA_NAMESPACE_BEGIN

class BlasLib {
 public:
  // The process-wide library (loaded on the first call), or null when absent, disabled with
  // VISATTN_CUBLAS=0, or in an emulator build.
  static const BlasLib* get();
  // Which library was loaded, or why none was (for diagnostics).
  static std::string describe();

  // A handle bound to `stream` with strict fp32 math (no TF32). false on failure.
  bool createHandle(void** handle, cudaStream_t stream) const;
  void destroyHandle(void* handle) const;
  // Row-major C_p[M,N] = alpha·op(A_p)·op(B_p) + beta·C_p for p < batch (see MatmulParams for the
  // layouts). Returns the cuBLAS status (0 = success).
  int gemmRowMajor(void* handle, bool transA, bool transB, int M, int N, int K, float alpha,
                   const float* A, long long strideA, const float* B, long long strideB,
                   float beta, float* C, long long strideC, int batch) const;

  using CreateFn = int (*)(void**);
  using DestroyFn = int (*)(void*);
  using SetStreamFn = int (*)(void*, cudaStream_t);
  using SetMathModeFn = int (*)(void*, int);
  using GemmFn = int (*)(void*, int, int, int, int, int, const float*, const float*, int,
                         long long, const float*, int, long long, const float*, float*, int,
                         long long, int);
  CreateFn create = nullptr;
  DestroyFn destroy = nullptr;
  SetStreamFn setStream = nullptr;
  SetMathModeFn setMathMode = nullptr;
  GemmFn sgemmStridedBatched = nullptr;
};

// Test hook: makes `backend` (a cuda/emu backend) dispatch matmul to `lib` from now on (null: back
// to the project's own GEMM). `lib` must outlive the backend. false for another backend kind.
bool setBlasForTesting(va::Backend* backend, const BlasLib* lib);

VA_CUDA_NAMESPACE_END
