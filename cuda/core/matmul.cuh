// visattn — the project's own tiled fp32 GEMM (used under emu always, on a GPU when cuBLAS is absent
// or disabled). 64×64 output tile per block, K in slabs of 16 staged through shared memory,
// 256 threads each holding a 4×4 register tile (rows ty+16i, columns tx+16j, so that shared loads
// broadcast/are conflict-free and stores to C are coalesced).
// Work items (batch entry, tile row, tile column) are distributed grid-stride over a 1-D grid.
// strideC == 0 ("reduce over the batch"): one block owns a C tile and accumulates every batch entry
// into the same registers in ascending p — deterministic, no atomics.
#pragma once
#include "common/compat.cuh"

#include <cstdint>

// Loop unrolling hint for both compilers.
#ifndef VA_UNROLL
#if defined(__CUDACC__)
#define VA_UNROLL _Pragma("unroll")
#else
#define VA_UNROLL _Pragma("GCC unroll 4")
#endif
#endif

VA_CUDA_NAMESPACE_BEGIN

constexpr int kGemmBM = 64, kGemmBN = 64, kGemmBK = 16, kGemmThreads = 256;

struct GemmArgs {
  const float* a;
  const float* b;
  float* c;
  const float* bias;
  int64_t batch, M, N, K;
  int64_t strideA, strideB, strideC;
  int64_t tilesM, tilesN;
  float alpha, beta;
};

// Loads the A slab (op(A) rows m0.., columns k0..) into As[k][m] and the B slab into Bs[k][n].
template <bool TA, bool TB>
__device__ __forceinline__ void gemmLoadSlab(const GemmArgs& g, const float* A, const float* B,
                                             int64_t m0, int64_t n0, int64_t k0,
                                             float (*As)[kGemmBM + 4], float (*Bs)[kGemmBN + 4]) {
  const int tid = threadIdx.x;
  for (int e = tid; e < kGemmBM * kGemmBK; e += kGemmThreads) {
    int m, k;
    if (TA) {  // A stored [K, M]: consecutive threads read consecutive m
      m = e % kGemmBM;
      k = e / kGemmBM;
    } else {  // A stored [M, K]: consecutive threads read consecutive k
      k = e % kGemmBK;
      m = e / kGemmBK;
    }
    const int64_t gm = m0 + m, gk = k0 + k;
    float v = 0.0f;
    if (gm < g.M && gk < g.K) v = TA ? A[gk * g.M + gm] : A[gm * g.K + gk];
    As[k][m] = v;
  }
  for (int e = tid; e < kGemmBN * kGemmBK; e += kGemmThreads) {
    int n, k;
    if (TB) {  // B stored [N, K]
      k = e % kGemmBK;
      n = e / kGemmBK;
    } else {  // B stored [K, N]
      n = e % kGemmBN;
      k = e / kGemmBN;
    }
    const int64_t gn = n0 + n, gk = k0 + k;
    float v = 0.0f;
    if (gn < g.N && gk < g.K) v = TB ? B[gn * g.K + gk] : B[gk * g.N + gn];
    Bs[k][n] = v;
  }
}

template <bool TA, bool TB>
__global__ void __launch_bounds__(kGemmThreads) gemmKernel(GemmArgs g) {
  __shared__ float As[kGemmBK][kGemmBM + 4];
  __shared__ float Bs[kGemmBK][kGemmBN + 4];
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  const bool reduceBatch = g.strideC == 0;
  const int64_t tiles = g.tilesM * g.tilesN;
  const int64_t items = reduceBatch ? tiles : tiles * g.batch;

  for (int64_t item = blockIdx.x; item < items; item += gridDim.x) {
    const int64_t tile = item % tiles;
    const int64_t pFirst = reduceBatch ? 0 : item / tiles;
    const int64_t pEnd = reduceBatch ? g.batch : pFirst + 1;
    const int64_t m0 = (tile / g.tilesN) * kGemmBM, n0 = (tile % g.tilesN) * kGemmBN;

    float acc[4][4];
VA_UNROLL
    for (int i = 0; i < 4; ++i)
VA_UNROLL
      for (int j = 0; j < 4; ++j) acc[i][j] = 0.0f;

    for (int64_t p = pFirst; p < pEnd; ++p) {
      const float* A = g.a + p * g.strideA;
      const float* B = g.b + p * g.strideB;
      for (int64_t k0 = 0; k0 < g.K; k0 += kGemmBK) {
        gemmLoadSlab<TA, TB>(g, A, B, m0, n0, k0, As, Bs);
        __syncthreads();
VA_UNROLL
        for (int kk = 0; kk < kGemmBK; ++kk) {
          float av[4], bv[4];
VA_UNROLL
          for (int i = 0; i < 4; ++i) av[i] = As[kk][ty + 16 * i];
VA_UNROLL
          for (int j = 0; j < 4; ++j) bv[j] = Bs[kk][tx + 16 * j];
VA_UNROLL
          for (int i = 0; i < 4; ++i)
VA_UNROLL
            for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
        }
        __syncthreads();
      }
    }

    float* C = g.c + (reduceBatch ? 0 : pFirst * g.strideC);
VA_UNROLL
    for (int i = 0; i < 4; ++i) {
      const int64_t gm = m0 + ty + 16 * i;
      if (gm >= g.M) continue;
VA_UNROLL
      for (int j = 0; j < 4; ++j) {
        const int64_t gn = n0 + tx + 16 * j;
        if (gn >= g.N) continue;
        float v = g.alpha * acc[i][j];
        if (g.bias) v += g.bias[gn];
        if (g.beta != 0.0f) v += g.beta * C[gm * g.N + gn];
        C[gm * g.N + gn] = v;
      }
    }
  }
}

// C_p = bias + beta·C_p (beta == 0: C not read).
template <int DUMMY>
__global__ void biasBetaKernel(float* c, const float* bias, int64_t count, int64_t strideC,
                               int64_t M, int64_t N, float beta) {
  const int64_t per = M * N, total = per * count;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t p = i / per, e = i % per;
    float* dst = c + p * strideC + e;
    float v = bias ? bias[e % N] : 0.0f;
    if (beta != 0.0f) v += beta * *dst;
    *dst = v;
  }
}

VA_CUDA_NAMESPACE_END
