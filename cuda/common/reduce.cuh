// visattn — warp and block reductions for both builds (nvcc and the emulator). No CUB.
//
// Every function here must be called by ALL threads of the warp (warp*) or of the block (block*),
// with blockDim.x a multiple of 32 and blockDim.y == blockDim.z == 1. The reduction order depends
// only on blockDim, so results are deterministic run to run.
#pragma once
#include "common/compat.cuh"

#include <cmath>

VA_CUDA_NAMESPACE_BEGIN

constexpr unsigned kFullMask = 0xffffffffu;

__device__ __forceinline__ float warpReduceSum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(kFullMask, v, o);
  return v;
}

__device__ __forceinline__ float warpReduceMax(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(kFullMask, v, o));
  return v;
}

// Sum over the block; every thread receives the result. `scratch` is a __shared__ array of at
// least 32 floats, reused freely by consecutive calls (this function synchronises before
// returning so the next call may overwrite it).
__device__ __forceinline__ float blockReduceSum(float v, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int nwarps = blockDim.x >> 5;
  v = warpReduceSum(v);
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float t = lane < nwarps ? scratch[lane] : 0.0f;
  t = warpReduceSum(t);
  __syncthreads();
  return t;
}

// Maximum over the block (fmaxf semantics: NaN inputs are ignored unless all are NaN).
__device__ __forceinline__ float blockReduceMax(float v, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int nwarps = blockDim.x >> 5;
  v = warpReduceMax(v);
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float t = lane < nwarps ? scratch[lane] : -INFINITY;
  t = warpReduceMax(t);
  __syncthreads();
  return t;
}

VA_CUDA_NAMESPACE_END
