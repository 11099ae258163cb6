// visattn — a non-fatal error record a kernel fills when it meets bad input (an index out of range)
// instead of calling __trap(), which on a GPU would poison the whole CUDA context. The backend
// zeroes the record before the launch, copies it to pinned host memory after it (stream-ordered)
// and, once the op's work has completed, turns a set record into the stream's sticky error
// (CudaBackend::withErrorRecord). The first thread to claim `flag` stores up to three values.
#pragma once
#include "common/compat.cuh"

VA_CUDA_NAMESPACE_BEGIN

struct KernelErrorRecord {
  int flag;  // 0: no error; 1: v holds the first recorded error's values
  int pad;
  long long v[3];
};

__device__ __forceinline__ void recordKernelError(KernelErrorRecord* rec, long long v0, long long v1,
                                                  long long v2) {
  if (rec && atomicCAS(&rec->flag, 0, 1) == 0) {
    rec->v[0] = v0;
    rec->v[1] = v1;
    rec->v[2] = v2;
  }
}

VA_CUDA_NAMESPACE_END
