// visattn — launchers of LayerNorm forward/backward.
#include "common/compat.cuh"

#include "core/layernorm.cuh"
#include "core/ops.h"

VA_CUDA_NAMESPACE_BEGIN

namespace {
unsigned rowBlocks(const LaunchCtx& ctx, int64_t rows) {
  int64_t cap = static_cast<int64_t>(ctx.smCount > 0 ? ctx.smCount : 1) * 32;
  int64_t b = rows < cap ? rows : cap;
  return static_cast<unsigned>(b < 1 ? 1 : b);
}
// Chunking of the rows for the parameter gradients: a function of the shape only.
void chunking(int64_t rows, int64_t* chunks, int64_t* rowsPerChunk) {
  int64_t c = (rows + 63) / 64;
  if (c > 256) c = 256;
  if (c < 1) c = 1;
  *rowsPerChunk = (rows + c - 1) / c;
  *chunks = (rows + *rowsPerChunk - 1) / *rowsPerChunk;
}
size_t align256(size_t n) { return (n + 255) & ~static_cast<size_t>(255); }
}  // namespace

cudaError_t launchLayerNorm(const LaunchCtx& ctx, const va::LayerNormParams& p) {
  return VA_LAUNCH(layerNormKernel<0>, dim3(rowBlocks(ctx, p.rows)), dim3(threadsFor(p.cols)), 0,
                   ctx.stream, p.x, p.gamma, p.beta, p.y, p.rows, p.cols, p.eps);
}

size_t layerNormBackwardWorkspace(const va::LayerNormBackwardParams& p) {
  int64_t chunks, rpc;
  chunking(p.rows, &chunks, &rpc);
  size_t bytes = align256(static_cast<size_t>(p.rows) * 2 * sizeof(float));
  if (chunks > 1) bytes += 2 * align256(static_cast<size_t>(chunks * p.cols) * sizeof(float));
  return bytes;
}

cudaError_t launchLayerNormBackward(const LaunchCtx& ctx, const va::LayerNormBackwardParams& p,
                                    void* workspace) {
  int64_t chunks, rpc;
  chunking(p.rows, &chunks, &rpc);
  char* ws = static_cast<char*>(workspace);
  float* stats = reinterpret_cast<float*>(ws);
  ws += align256(static_cast<size_t>(p.rows) * 2 * sizeof(float));
  float* pg = p.dgamma;
  float* pb = p.dbeta;
  if (chunks > 1) {
    pg = reinterpret_cast<float*>(ws);
    ws += align256(static_cast<size_t>(chunks * p.cols) * sizeof(float));
    pb = reinterpret_cast<float*>(ws);
  }
  cudaError_t err =
      VA_LAUNCH(layerNormBackwardRowKernel<0>, dim3(rowBlocks(ctx, p.rows)),
                dim3(threadsFor(p.cols)), 0, ctx.stream, p.x, p.gamma, p.dy, p.dx, stats, p.rows,
                p.cols, p.eps);
  if (err != cudaSuccess) return err;
  const dim3 grid(static_cast<unsigned>((p.cols + kLnColTile - 1) / kLnColTile),
                  static_cast<unsigned>(chunks));
  err = VA_LAUNCH(layerNormParamGradKernel<0>, grid, dim3(kLnColTile, kLnRowLanes), 0, ctx.stream,
                  p.x, p.dy, stats, pg, pb, p.rows, p.cols, rpc);
  if (err != cudaSuccess || chunks == 1) return err;
  const int t = threadsFor(p.cols);
  return VA_LAUNCH(layerNormSumChunksKernel<0>, dim3(gridFor(ctx, p.cols, t)), dim3(t), 0,
                   ctx.stream, pg, pb, p.dgamma, p.dbeta, chunks, p.cols);
}

VA_CUDA_NAMESPACE_END
