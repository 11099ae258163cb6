// visattn — middle-axis sum (ReduceParams) and channels-last average pooling (+backward, gather).
#pragma once
#include "common/compat.cuh"

#include <cstdint>

VA_CUDA_NAMESPACE_BEGIN

// y[o, i] = scale · Σ_l x[o, l, i], ascending l; one thread per output (coalesced over i).
template <int DUMMY>
__global__ void reduceMiddleKernel(const float* __restrict__ x, float* __restrict__ y,
                                   int64_t outer, int64_t len, int64_t inner, float scale) {
  const int64_t total = outer * inner;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < total;
       t += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t o = t / inner, i = t % inner;
    const float* src = x + o * len * inner + i;
    float s = 0.0f;
    for (int64_t l = 0; l < len; ++l) s += src[l * inner];
    y[t] = scale * s;
  }
}

// Long reductions with few outputs: pass 1 sums fixed chunks of l (chunk k covers
// [k·lenPerChunk, (k+1)·lenPerChunk)) into part[o, k, i]; pass 2 adds the chunks in ascending k.
template <int DUMMY>
__global__ void reduceChunksKernel(const float* __restrict__ x, float* __restrict__ part,
                                   int64_t outer, int64_t len, int64_t inner, int64_t chunks,
                                   int64_t lenPerChunk) {
  const int64_t total = outer * chunks * inner;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < total;
       t += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t i = t % inner;
    const int64_t k = (t / inner) % chunks;
    const int64_t o = t / (inner * chunks);
    const int64_t l0 = k * lenPerChunk;
    const int64_t l1 = l0 + lenPerChunk < len ? l0 + lenPerChunk : len;
    const float* src = x + o * len * inner + i;
    float s = 0.0f;
    for (int64_t l = l0; l < l1; ++l) s += src[l * inner];
    part[t] = s;
  }
}

__device__ __forceinline__ int64_t poolMin64(int64_t a, int64_t b) { return a < b ? a : b; }
__device__ __forceinline__ int64_t poolMax64(int64_t a, int64_t b) { return a > b ? a : b; }

struct PoolArgs {
  int64_t B, H, W, C, Ho, Wo;
  int64_t kernel, stride;
};

// Pixels of window (i, j) inside the image.
__device__ __forceinline__ float poolCount(const PoolArgs& a, int64_t i, int64_t j) {
  const int64_t h0 = i * a.stride, w0 = j * a.stride;
  const int64_t hn = poolMin64(h0 + a.kernel, a.H) - h0, wn = poolMin64(w0 + a.kernel, a.W) - w0;
  return static_cast<float>(poolMax64(hn, 0) * poolMax64(wn, 0));
}

template <int DUMMY>
__global__ void avgPoolKernel(const float* __restrict__ x, float* __restrict__ y, PoolArgs a) {
  const int64_t total = a.B * a.Ho * a.Wo * a.C;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < total;
       t += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t c = t % a.C;
    int64_t r = t / a.C;
    const int64_t j = r % a.Wo;
    r /= a.Wo;
    const int64_t i = r % a.Ho;
    const int64_t b = r / a.Ho;
    const int64_t h0 = i * a.stride, w0 = j * a.stride;
    const int64_t h1 = poolMin64(h0 + a.kernel, a.H), w1 = poolMin64(w0 + a.kernel, a.W);
    float s = 0.0f;
    for (int64_t h = h0; h < h1; ++h)
      for (int64_t w = w0; w < w1; ++w) s += x[((b * a.H + h) * a.W + w) * a.C + c];
    const float n = poolCount(a, i, j);
    y[t] = n > 0.0f ? s / n : 0.0f;
  }
}

// dx[b,h,w,c] = Σ over windows (i, j) covering (h, w) of dy[b,i,j,c] / count(i, j).
template <int DUMMY>
__global__ void avgPoolBackwardKernel(const float* __restrict__ dy, float* __restrict__ dx,
                                      PoolArgs a) {
  const int64_t total = a.B * a.H * a.W * a.C;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < total;
       t += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t c = t % a.C;
    int64_t r = t / a.C;
    const int64_t w = r % a.W;
    r /= a.W;
    const int64_t h = r % a.H;
    const int64_t b = r / a.H;
    // windows i with i·s <= h < i·s + k
    const int64_t iLo = h >= a.kernel ? (h - a.kernel) / a.stride + 1 : 0;
    const int64_t iHi = poolMin64(h / a.stride, a.Ho - 1);
    const int64_t jLo = w >= a.kernel ? (w - a.kernel) / a.stride + 1 : 0;
    const int64_t jHi = poolMin64(w / a.stride, a.Wo - 1);
    float s = 0.0f;
    for (int64_t i = iLo; i <= iHi; ++i)
      for (int64_t j = jLo; j <= jHi; ++j)
        s += dy[((b * a.Ho + i) * a.Wo + j) * a.C + c] / poolCount(a, i, j);
    dx[t] = s;
  }
}

VA_CUDA_NAMESPACE_END
