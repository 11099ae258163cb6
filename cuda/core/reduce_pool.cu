// visattn — launchers of the middle-axis sum and average pooling.
#include "common/compat.cuh"

#include "core/ops.h"
#include "core/reduce_pool.cuh"

VA_CUDA_NAMESPACE_BEGIN

namespace {
// Few outputs and a long axis: split the axis into chunks of at least 64 (at most 256 chunks) so
// that enough threads run. Depends on the shape only, so results are deterministic everywhere.
void reduceChunking(const va::ReduceParams& p, int64_t* chunks, int64_t* lenPerChunk) {
  const int64_t outputs = p.outer * p.inner;
  int64_t c = 1;
  if (outputs < 65536 && p.len >= 128) {
    c = p.len / 64;
    if (c > 256) c = 256;
  }
  *lenPerChunk = (p.len + c - 1) / c;
  *chunks = (p.len + *lenPerChunk - 1) / *lenPerChunk;
}
}  // namespace

size_t reduceWorkspace(const va::ReduceParams& p) {
  int64_t chunks, lpc;
  reduceChunking(p, &chunks, &lpc);
  if (chunks <= 1) return 0;
  return static_cast<size_t>(p.outer * chunks * p.inner) * sizeof(float);
}

cudaError_t launchReduce(const LaunchCtx& ctx, const va::ReduceParams& p, void* workspace) {
  int64_t chunks, lpc;
  reduceChunking(p, &chunks, &lpc);
  if (chunks > 1) {
    float* part = static_cast<float*>(workspace);
    const int64_t total = p.outer * chunks * p.inner;
    const int t = threadsFor(total);
    cudaError_t err = VA_LAUNCH(reduceChunksKernel<0>, dim3(gridFor(ctx, total, t)), dim3(t), 0,
                                ctx.stream, p.x, part, p.outer, p.len, p.inner, chunks, lpc);
    if (err != cudaSuccess) return err;
    // Pass 2 is the plain middle-axis sum over [outer, chunks, inner].
    const int64_t outs = p.outer * p.inner;
    const int t2 = threadsFor(outs);
    return VA_LAUNCH(reduceMiddleKernel<0>, dim3(gridFor(ctx, outs, t2)), dim3(t2), 0, ctx.stream,
                     part, p.y, p.outer, chunks, p.inner, p.scale);
  }
  const int64_t total = p.outer * p.inner;
  const int t = threadsFor(total);
  return VA_LAUNCH(reduceMiddleKernel<0>, dim3(gridFor(ctx, total, t)), dim3(t), 0,
                   ctx.stream, p.x, p.y, p.outer, p.len, p.inner, p.scale);
}

namespace {
PoolArgs poolArgs(int64_t B, int64_t H, int64_t W, int64_t C, int64_t Ho, int64_t Wo, int32_t k,
                  int32_t s) {
  PoolArgs a;
  a.B = B;
  a.H = H;
  a.W = W;
  a.C = C;
  a.Ho = Ho;
  a.Wo = Wo;
  a.kernel = k;
  a.stride = s;
  return a;
}
}  // namespace

cudaError_t launchAvgPool2d(const LaunchCtx& ctx, const va::AvgPool2dParams& p) {
  const PoolArgs a = poolArgs(p.B, p.H, p.W, p.C, p.Ho, p.Wo, p.kernel, p.stride);
  const int64_t total = p.B * p.Ho * p.Wo * p.C;
  const int t = threadsFor(total);
  return VA_LAUNCH(avgPoolKernel<0>, dim3(gridFor(ctx, total, t)), dim3(t), 0, ctx.stream,
                   p.x, p.y, a);
}

cudaError_t launchAvgPool2dBackward(const LaunchCtx& ctx, const va::AvgPool2dBackwardParams& p) {
  const PoolArgs a = poolArgs(p.B, p.H, p.W, p.C, p.Ho, p.Wo, p.kernel, p.stride);
  const int64_t total = p.B * p.H * p.W * p.C;
  const int t = threadsFor(total);
  return VA_LAUNCH(avgPoolBackwardKernel<0>, dim3(gridFor(ctx, total, t)), dim3(t), 0,
                   ctx.stream, p.dy, p.dx, a);
}

VA_CUDA_NAMESPACE_END
