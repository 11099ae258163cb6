// visattn — launchers of the element-wise kernels (binary, affine, unary, fill, random, copy).
#include "common/compat.cuh"

#include "core/elementwise.cuh"
#include "core/ops.h"

VA_CUDA_NAMESPACE_BEGIN


cudaError_t launchBinary(const LaunchCtx& ctx, const va::BinaryParams& p) {
  const int64_t n = p.outer * p.inner;
  const int threads = threadsFor(n);
  const dim3 grid(gridFor(ctx, n, threads)), block(threads);
  switch (p.op) {
    case va::BinaryOp::Add:
      return VA_LAUNCH(binaryKernel<0>, grid, block, 0, ctx.stream, p.a, p.b, p.out, p.outer,
                       p.inner, p.aBcast, p.bBcast);
    case va::BinaryOp::Sub:
      return VA_LAUNCH(binaryKernel<1>, grid, block, 0, ctx.stream, p.a, p.b, p.out, p.outer,
                       p.inner, p.aBcast, p.bBcast);
    default:
      return VA_LAUNCH(binaryKernel<2>, grid, block, 0, ctx.stream, p.a, p.b, p.out, p.outer,
                       p.inner, p.aBcast, p.bBcast);
  }
}

cudaError_t launchAffine(const LaunchCtx& ctx, const va::AffineParams& p) {
  const int threads = threadsFor(p.n);
  return VA_LAUNCH(affineKernel<0>, dim3(gridFor(ctx, p.n, threads)), dim3(threads), 0,
                   ctx.stream, p.x, p.out, p.n, p.alpha, p.beta);
}

cudaError_t launchUnary(const LaunchCtx& ctx, const va::UnaryParams& p) {
  const int threads = threadsFor(p.n);
  const dim3 grid(gridFor(ctx, p.n, threads)), block(threads);
  switch (p.op) {
    case va::UnaryOp::Relu:
      return VA_LAUNCH(unaryKernel<0>, grid, block, 0, ctx.stream, p.x, p.out, p.n);
    case va::UnaryOp::Gelu:
      return VA_LAUNCH(unaryKernel<1>, grid, block, 0, ctx.stream, p.x, p.out, p.n);
    default:
      return VA_LAUNCH(unaryKernel<2>, grid, block, 0, ctx.stream, p.x, p.out, p.n);
  }
}

cudaError_t launchUnaryBackward(const LaunchCtx& ctx, const va::UnaryBackwardParams& p) {
  const int threads = threadsFor(p.n);
  const dim3 grid(gridFor(ctx, p.n, threads)), block(threads);
  switch (p.op) {
    case va::UnaryOp::Relu:
      return VA_LAUNCH(unaryBackwardKernel<0>, grid, block, 0, ctx.stream, p.x, p.dy, p.dx, p.n);
    case va::UnaryOp::Gelu:
      return VA_LAUNCH(unaryBackwardKernel<1>, grid, block, 0, ctx.stream, p.x, p.dy, p.dx, p.n);
    default:
      return VA_LAUNCH(unaryBackwardKernel<2>, grid, block, 0, ctx.stream, p.x, p.dy, p.dx, p.n);
  }
}

cudaError_t launchFill(const LaunchCtx& ctx, const va::FillParams& p) {
  const int threads = threadsFor(p.n);
  return VA_LAUNCH(fillKernel<0>, dim3(gridFor(ctx, p.n, threads)), dim3(threads), 0,
                   ctx.stream, static_cast<uint32_t*>(p.dst), p.n, p.bits);
}

cudaError_t launchRandom(const LaunchCtx& ctx, const va::RandomParams& p) {
  const int64_t groups = (p.n + 3) / 4;
  const int threads = threadsFor(groups);
  const dim3 grid(gridFor(ctx, groups, threads)), block(threads);
  if (p.kind == va::RandomKind::Normal)
    return VA_LAUNCH(randomKernel<0>, grid, block, 0, ctx.stream, p.out, p.n, p.seed, p.offset,
                     p.mean, p.std);
  return VA_LAUNCH(randomKernel<1>, grid, block, 0, ctx.stream, p.out, p.n, p.seed, p.offset,
                   p.mean, p.std);
}

cudaError_t launchCopy(const LaunchCtx& ctx, const va::CopyParams& p) {
  // Drop size-1 dims, then merge neighbours that are contiguous in both source and destination.
  CopyArgs c{};
  c.src = static_cast<const uint32_t*>(p.src) + p.srcOffset;
  c.dst = static_cast<uint32_t*>(p.dst) + p.dstOffset;
  c.scale = p.scale;
  c.total = 1;
  int nd = 0;
  for (int d = 0; d < p.ndim; ++d) {
    c.total *= p.shape[d];
    if (p.shape[d] == 1) continue;
    if (nd > 0 && c.srcStride[nd - 1] == p.srcStride[d] * p.shape[d] &&
        c.dstStride[nd - 1] == p.dstStride[d] * p.shape[d]) {
      c.shape[nd - 1] *= p.shape[d];
      c.srcStride[nd - 1] = p.srcStride[d];
      c.dstStride[nd - 1] = p.dstStride[d];
      continue;
    }
    c.shape[nd] = p.shape[d];
    c.srcStride[nd] = p.srcStride[d];
    c.dstStride[nd] = p.dstStride[d];
    ++nd;
  }
  if (nd == 0) {  // a single element
    c.shape[0] = 1;
    c.srcStride[0] = 0;
    c.dstStride[0] = 0;
    nd = 1;
  }
  c.ndim = nd;
  if (c.total <= 0) return cudaSuccess;
  const int threads = threadsFor(c.total);
  const dim3 grid(gridFor(ctx, c.total, threads)), block(threads);
  if (p.scale == 1.0f) return VA_LAUNCH(copyKernel<false>, grid, block, 0, ctx.stream, c);
  return VA_LAUNCH(copyKernel<true>, grid, block, 0, ctx.stream, c);
}

VA_CUDA_NAMESPACE_END
