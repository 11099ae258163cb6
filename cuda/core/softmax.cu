// visattn — launchers of softmax / log-softmax (+backward).
#include "common/compat.cuh"

#include "core/ops.h"
#include "core/softmax.cuh"

VA_CUDA_NAMESPACE_BEGIN

namespace {
unsigned rowBlocks(const LaunchCtx& ctx, int64_t rows) {
  int64_t cap = static_cast<int64_t>(ctx.smCount > 0 ? ctx.smCount : 1) * 32;
  int64_t b = rows < cap ? rows : cap;
  return static_cast<unsigned>(b < 1 ? 1 : b);
}
}  // namespace

cudaError_t launchSoftmax(const LaunchCtx& ctx, const va::SoftmaxParams& p) {
  const dim3 grid(rowBlocks(ctx, p.rows)), block(threadsFor(p.cols));
  if (p.log) return VA_LAUNCH(softmaxKernel<true>, grid, block, 0, ctx.stream, p.x, p.y, p.rows, p.cols);
  return VA_LAUNCH(softmaxKernel<false>, grid, block, 0, ctx.stream, p.x, p.y, p.rows, p.cols);
}

cudaError_t launchSoftmaxBackward(const LaunchCtx& ctx, const va::SoftmaxBackwardParams& p) {
  const dim3 grid(rowBlocks(ctx, p.rows)), block(threadsFor(p.cols));
  if (p.log)
    return VA_LAUNCH(softmaxBackwardKernel<true>, grid, block, 0, ctx.stream, p.x, p.dy, p.dx,
                     p.rows, p.cols);
  return VA_LAUNCH(softmaxBackwardKernel<false>, grid, block, 0, ctx.stream, p.x, p.dy, p.dx,
                   p.rows, p.cols);
}

VA_CUDA_NAMESPACE_END
