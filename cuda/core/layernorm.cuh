// visattn — LayerNorm over the last axis (biased variance) and its backward.
// Forward: one block per row, two-pass mean/variance. Backward: (1) one block per row writes dx and
// the row's (mean, rstd); (2) column partial sums of dy·x̂ and dy over fixed row chunks, each
// chunk summed by 32×8 threads in a fixed order; (3) the chunks summed in ascending order.
// The chunking depends only on the shape, so dgamma/dbeta are deterministic (no float atomics).
#pragma once
#include "common/compat.cuh"

#include <cmath>
#include <cstdint>

#include "common/reduce.cuh"

VA_CUDA_NAMESPACE_BEGIN

__device__ __forceinline__ void layerNormRowStats(const float* xr, int64_t cols, float eps,
                                                  float* scratch, float* meanOut, float* rstdOut) {
  float s = 0.0f;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) s += xr[c];
  const float mean = blockReduceSum(s, scratch) / static_cast<float>(cols);
  float v = 0.0f;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    const float d = xr[c] - mean;
    v += d * d;
  }
  const float var = blockReduceSum(v, scratch) / static_cast<float>(cols);
  *meanOut = mean;
  *rstdOut = 1.0f / sqrtf(var + eps);
}

template <int DUMMY>
__global__ void layerNormKernel(const float* __restrict__ x, const float* __restrict__ gamma,
                                const float* __restrict__ beta, float* __restrict__ y,
                                int64_t rows, int64_t cols, float eps) {
  __shared__ float scratch[32];
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const float* xr = x + row * cols;
    float* yr = y + row * cols;
    float mean, rstd;
    layerNormRowStats(xr, cols, eps, scratch, &mean, &rstd);
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x)
      yr[c] = (xr[c] - mean) * rstd * gamma[c] + beta[c];
  }
}

// dx = rstd · (g − mean(g) − x̂·mean(g·x̂)), g = dy·gamma. Stores (mean, rstd) per row.
template <int DUMMY>
__global__ void layerNormBackwardRowKernel(const float* __restrict__ x,
                                           const float* __restrict__ gamma,
                                           const float* __restrict__ dy, float* __restrict__ dx,
                                           float* __restrict__ stats, int64_t rows, int64_t cols,
                                           float eps) {
  __shared__ float scratch[32];
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const float* xr = x + row * cols;
    const float* gr = dy + row * cols;
    float* dr = dx + row * cols;
    float mean, rstd;
    layerNormRowStats(xr, cols, eps, scratch, &mean, &rstd);
    float sg = 0.0f, sgx = 0.0f;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
      const float g = gr[c] * gamma[c];
      sg += g;
      sgx += g * ((xr[c] - mean) * rstd);
    }
    sg = blockReduceSum(sg, scratch);
    sgx = blockReduceSum(sgx, scratch);
    const float invC = 1.0f / static_cast<float>(cols);
    const float mg = sg * invC, mgx = sgx * invC;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
      const float xh = (xr[c] - mean) * rstd;
      dr[c] = rstd * (gr[c] * gamma[c] - mg - xh * mgx);
    }
    if (threadIdx.x == 0) {
      stats[2 * row] = mean;
      stats[2 * row + 1] = rstd;
    }
  }
}

constexpr int kLnColTile = 32, kLnRowLanes = 8;

// Block (32, 8): columns blockIdx.x·32 + tx, rows of chunk blockIdx.y. Writes the chunk's partial
// sums to pg/pb [chunks, cols] (or straight to dgamma/dbeta when there is one chunk).
template <int DUMMY>
__global__ void layerNormParamGradKernel(const float* __restrict__ x, const float* __restrict__ dy,
                                         const float* __restrict__ stats, float* __restrict__ pg,
                                         float* __restrict__ pb, int64_t rows, int64_t cols,
                                         int64_t rowsPerChunk) {
  __shared__ float sG[kLnRowLanes][kLnColTile];
  __shared__ float sB[kLnRowLanes][kLnColTile];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int64_t col = static_cast<int64_t>(blockIdx.x) * kLnColTile + tx;
  const int64_t r0 = static_cast<int64_t>(blockIdx.y) * rowsPerChunk;
  int64_t r1 = r0 + rowsPerChunk;
  if (r1 > rows) r1 = rows;
  float g = 0.0f, b = 0.0f;
  if (col < cols) {
    for (int64_t r = r0 + ty; r < r1; r += kLnRowLanes) {
      const float d = dy[r * cols + col];
      const float xh = (x[r * cols + col] - stats[2 * r]) * stats[2 * r + 1];
      g += d * xh;
      b += d;
    }
  }
  sG[ty][tx] = g;
  sB[ty][tx] = b;
  __syncthreads();
  if (ty == 0 && col < cols) {
    float tg = 0.0f, tb = 0.0f;
    for (int i = 0; i < kLnRowLanes; ++i) {
      tg += sG[i][tx];
      tb += sB[i][tx];
    }
    pg[static_cast<int64_t>(blockIdx.y) * cols + col] = tg;
    pb[static_cast<int64_t>(blockIdx.y) * cols + col] = tb;
  }
}

template <int DUMMY>
__global__ void layerNormSumChunksKernel(const float* __restrict__ pg, const float* __restrict__ pb,
                                         float* __restrict__ dgamma, float* __restrict__ dbeta,
                                         int64_t chunks, int64_t cols) {
  for (int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; c < cols;
       c += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float g = 0.0f, b = 0.0f;
    for (int64_t k = 0; k < chunks; ++k) {
      g += pg[k * cols + c];
      b += pb[k * cols + c];
    }
    dgamma[c] = g;
    dbeta[c] = b;
  }
}

VA_CUDA_NAMESPACE_END
