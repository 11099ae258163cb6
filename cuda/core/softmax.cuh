// visattn — row softmax / log-softmax and their backward (recomputed from x).
// One block per row (grid-stride over rows); block reductions from common/reduce.cuh.
#pragma once
#include "common/compat.cuh"

#include <cmath>
#include <cstdint>

#include "common/reduce.cuh"

VA_CUDA_NAMESPACE_BEGIN

// Row statistics: max and Σ exp(x − max).
__device__ __forceinline__ void softmaxRowStats(const float* xr, int64_t cols, float* scratch,
                                                float* mOut, float* sOut) {
  float m = -INFINITY;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) m = fmaxf(m, xr[c]);
  m = blockReduceMax(m, scratch);
  float s = 0.0f;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) s += expf(xr[c] - m);
  s = blockReduceSum(s, scratch);
  *mOut = m;
  *sOut = s;
}

template <bool LOG>
__global__ void softmaxKernel(const float* __restrict__ x, float* __restrict__ y, int64_t rows,
                              int64_t cols) {
  __shared__ float scratch[32];
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const float* xr = x + row * cols;
    float* yr = y + row * cols;
    float m, s;
    softmaxRowStats(xr, cols, scratch, &m, &s);
    if (LOG) {
      const float ls = logf(s);
      for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) yr[c] = (xr[c] - m) - ls;
    } else {
      const float inv = 1.0f / s;
      for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) yr[c] = expf(xr[c] - m) * inv;
    }
  }
}

// softmax: dx = y ⊙ (dy − Σ dy⊙y); log-softmax: dx = dy − exp(y)·Σ dy.
template <bool LOG>
__global__ void softmaxBackwardKernel(const float* __restrict__ x, const float* __restrict__ dy,
                                      float* __restrict__ dx, int64_t rows, int64_t cols) {
  __shared__ float scratch[32];
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const float* xr = x + row * cols;
    const float* gr = dy + row * cols;
    float* dr = dx + row * cols;
    float m, s;
    softmaxRowStats(xr, cols, scratch, &m, &s);
    const float inv = 1.0f / s;
    float t = 0.0f;
    if (LOG) {
      for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) t += gr[c];
    } else {
      for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) t += gr[c] * (expf(xr[c] - m) * inv);
    }
    t = blockReduceSum(t, scratch);
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
      const float p = expf(xr[c] - m) * inv;
      dr[c] = LOG ? gr[c] - p * t : p * (gr[c] - t);
    }
  }
}

VA_CUDA_NAMESPACE_END
