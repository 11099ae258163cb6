// visattn — element-wise kernels: binary, affine, activations (+backward), fill, random, copy.
// Grid-stride loops with 64-bit indices.
#pragma once
#include "common/compat.cuh"

#include <cmath>
#include <cstdint>

#include "visattn/params.h"
#include "visattn/philox.h"

VA_CUDA_NAMESPACE_BEGIN

__device__ __forceinline__ int64_t gridStart() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t gridStep() {
  return static_cast<int64_t>(gridDim.x) * blockDim.x;
}

template <int OP>
__global__ void binaryKernel(const float* __restrict__ a, const float* __restrict__ b,
                             float* __restrict__ out, int64_t outer, int64_t inner, bool aBcast,
                             bool bBcast) {
  const int64_t n = outer * inner;
  for (int64_t i = gridStart(); i < n; i += gridStep()) {
    const int64_t j = i % inner;
    const float x = a[aBcast ? j : i];
    const float y = b[bBcast ? j : i];
    float r;
    if (OP == 0) r = x + y;
    else if (OP == 1) r = x - y;
    else r = x * y;
    out[i] = r;
  }
}

template <int DUMMY>
__global__ void affineKernel(const float* __restrict__ x, float* __restrict__ out, int64_t n,
                             float alpha, float beta) {
  for (int64_t i = gridStart(); i < n; i += gridStep()) out[i] = alpha * x[i] + beta;
}

__device__ __forceinline__ float geluErf(float x) {
  return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
}
__device__ __forceinline__ float sigmoidf_(float x) { return 1.0f / (1.0f + expf(-x)); }

template <int OP>
__global__ void unaryKernel(const float* __restrict__ x, float* __restrict__ out, int64_t n) {
  for (int64_t i = gridStart(); i < n; i += gridStep()) {
    const float v = x[i];
    float r;
    if (OP == 0) r = v > 0.0f ? v : 0.0f;
    else if (OP == 1) r = geluErf(v);
    else r = v * sigmoidf_(v);
    out[i] = r;
  }
}

template <int OP>
__global__ void unaryBackwardKernel(const float* __restrict__ x, const float* __restrict__ dy,
                                    float* __restrict__ dx, int64_t n) {
  for (int64_t i = gridStart(); i < n; i += gridStep()) {
    const float v = x[i], g = dy[i];
    float d;
    if (OP == 0) {
      d = v > 0.0f ? g : 0.0f;
    } else if (OP == 1) {
      const float cdf = 0.5f * (1.0f + erff(v * 0.70710678118654752f));
      const float pdf = 0.39894228040143268f * expf(-0.5f * v * v);
      d = g * (cdf + v * pdf);
    } else {
      const float s = sigmoidf_(v);
      d = g * (s * (1.0f + v * (1.0f - s)));
    }
    dx[i] = d;
  }
}

template <int DUMMY>
__global__ void fillKernel(uint32_t* __restrict__ dst, int64_t n, uint32_t bits) {
  for (int64_t i = gridStart(); i < n; i += gridStep()) dst[i] = bits;
}

// mean + std·z without FMA contraction (the cpu computes a rounded product, then a rounded sum).
__device__ __forceinline__ float scaleShift(float z, float stdv, float mean) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(__fmul_rn(stdv, z), mean);
#else
  volatile float prod = stdv * z;
  return prod + mean;
#endif
}

// One thread per Philox group of 4 elements: element i uses group i/4, lane i%4.
template <int KIND>
__global__ void randomKernel(float* __restrict__ out, int64_t n, uint64_t seed, uint64_t offset,
                             float mean, float stdv) {
  const int64_t groups = (n + 3) / 4;
  for (int64_t g = gridStart(); g < groups; g += gridStep()) {
    const va::philox::U4 r = va::philox::philox4x32_10(static_cast<uint64_t>(g), offset, seed);
    for (int lane = 0; lane < 4; ++lane) {
      const int64_t i = g * 4 + lane;
      if (i >= n) break;
      float v;
      if (KIND == 0) v = scaleShift(va::philox::normalAt(r, lane), stdv, mean);
      else v = va::philox::uniform24(r.v[lane]);
      out[i] = v;
    }
  }
}

// Generic strided copy: dims merged on the host; `ndim` in [1, kMaxDims].
struct CopyArgs {
  const uint32_t* src;
  uint32_t* dst;
  int32_t ndim;
  int64_t total;
  int64_t shape[va::kMaxDims];
  int64_t srcStride[va::kMaxDims];
  int64_t dstStride[va::kMaxDims];
  float scale;
};

template <bool SCALE>
__global__ void copyKernel(CopyArgs c) {
  for (int64_t i = gridStart(); i < c.total; i += gridStep()) {
    int64_t rem = i, so = 0, dof = 0;
    for (int d = c.ndim - 1; d >= 0; --d) {
      const int64_t s = c.shape[d];
      const int64_t t = rem % s;
      rem /= s;
      so += t * c.srcStride[d];
      dof += t * c.dstStride[d];
    }
    if (SCALE) {
      c.dst[dof] = __float_as_uint(c.scale * __uint_as_float(c.src[so]));
    } else {
      c.dst[dof] = c.src[so];
    }
  }
}

VA_CUDA_NAMESPACE_END
