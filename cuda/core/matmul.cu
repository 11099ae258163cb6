// visattn — launcher of the project's own GEMM (see matmul.cuh).
#include "common/compat.cuh"

#include "core/matmul.cuh"
#include "core/ops.h"

VA_CUDA_NAMESPACE_BEGIN

cudaError_t launchMatmul(const LaunchCtx& ctx, const va::MatmulParams& p) {
  GemmArgs g;
  g.a = p.a;
  g.b = p.b;
  g.c = p.c;
  g.bias = p.bias;
  g.batch = p.batch;
  g.M = p.M;
  g.N = p.N;
  g.K = p.K;
  g.strideA = p.strideA;
  g.strideB = p.strideB;
  g.strideC = p.strideC;
  g.tilesM = (p.M + kGemmBM - 1) / kGemmBM;
  g.tilesN = (p.N + kGemmBN - 1) / kGemmBN;
  g.alpha = p.alpha;
  g.beta = p.beta;
  const int64_t tiles = g.tilesM * g.tilesN;
  int64_t items = p.strideC == 0 ? tiles : tiles * p.batch;
  // Enough blocks to fill the device several times over; the kernel strides over the rest.
  const int64_t cap = static_cast<int64_t>(ctx.smCount > 0 ? ctx.smCount : 1) * 64;
  if (items > cap) items = cap;
  if (items < 1) items = 1;
  const dim3 grid(static_cast<unsigned>(items)), block(kGemmThreads);
  if (p.transA) {
    if (p.transB) return VA_LAUNCH((gemmKernel<true, true>), grid, block, 0, ctx.stream, g);
    return VA_LAUNCH((gemmKernel<true, false>), grid, block, 0, ctx.stream, g);
  }
  if (p.transB) return VA_LAUNCH((gemmKernel<false, true>), grid, block, 0, ctx.stream, g);
  return VA_LAUNCH((gemmKernel<false, false>), grid, block, 0, ctx.stream, g);
}

cudaError_t launchBiasBeta(const LaunchCtx& ctx, float* c, const float* bias, int64_t count,
                           int64_t strideC, int64_t M, int64_t N, float beta) {
  const int64_t total = M * N * count;
  const int t = threadsFor(total);
  return VA_LAUNCH(biasBetaKernel<0>, dim3(gridFor(ctx, total, t)), dim3(t), 0, ctx.stream, c,
                   bias, count, strideC, M, N, beta);
}

VA_CUDA_NAMESPACE_END
