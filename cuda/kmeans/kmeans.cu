// visattn — launchers of the k-means cross-attention and row L2-normalisation kernels
// (cuda/kmeans/kmeans.cuh describes the kernels).
//
// Forward workspace (bytes; every piece rounded up to 256), C = ceil(N / 256), S = ceil(N / 64) + L:
//   counts 4·B·C·L   rank 4·B·N   order 4·B·N   starts 4·B·(L+1)   segStart 4·B·(L+1)
//   segCluster 4·B·S   partial 4·B·S·Dv
// Target (B = 1, N = 161² = 25921, L = 128, Dv = 256): C = 102, S = 534 → ≈ 0.86 MB
// (partial 547 KB, rank + order 207 KB, counts 52 KB).
// Limits: N, L < 2³¹ (int32 indices), else cudaErrorInvalidValue.
#include "common/compat.cuh"

#include "core/ops.h"
#include "kmeans/kmeans.cuh"

VA_CUDA_NAMESPACE_BEGIN

namespace {

size_t kmAlign(size_t bytes) { return (bytes + 255) / 256 * 256; }

bool kmValid(const va::KMeansParams& p) {
  return p.B >= 0 && p.N >= 0 && p.L >= 1 && p.D >= 0 && p.Dv >= 0 && p.N <= 0x7fffffff &&
         p.L <= 0x7ffffffe;
}

// Carves the workspace (base may be null to just compute the size).
size_t kmLayout(const va::KMeansParams& p, void* base, KmArgs* out) {
  KmArgs a{};
  a.B = p.B;
  a.N = p.N;
  a.L = p.L;
  a.D = p.D;
  a.Dv = p.Dv;
  a.C = (p.N + kKmChunk - 1) / kKmChunk;
  a.S = (p.N + kKmSeg - 1) / kKmSeg + p.L;
  char* b = static_cast<char*>(base);
  size_t off = 0;
  auto take = [&](size_t bytes) {
    char* ptr = b ? b + off : nullptr;
    off += kmAlign(bytes);
    return ptr;
  };
  const size_t B = static_cast<size_t>(a.B);
  a.counts = reinterpret_cast<int*>(take(4 * B * a.C * a.L));
  a.rank = reinterpret_cast<int*>(take(4 * B * a.N));
  a.order = reinterpret_cast<int*>(take(4 * B * a.N));
  a.starts = reinterpret_cast<int*>(take(4 * B * (a.L + 1)));
  a.segStart = reinterpret_cast<int*>(take(4 * B * (a.L + 1)));
  a.segCluster = reinterpret_cast<int*>(take(4 * B * a.S));
  a.partial = reinterpret_cast<float*>(take(4 * B * a.S * a.Dv));
  if (out) *out = a;
  return off;
}

}  // namespace

size_t kmeansWorkspace(const va::KMeansParams& p) {
  if (!kmValid(p) || p.B == 0) return 0;
  return kmLayout(p, nullptr, nullptr);
}

cudaError_t launchKMeans(const LaunchCtx& ctx, const va::KMeansParams& p, void* workspace) {
  if (!kmValid(p)) return cudaErrorInvalidValue;
  if (p.B == 0) return cudaSuccess;
  if (!workspace) return cudaErrorInvalidValue;
  KmArgs a;
  kmLayout(p, workspace, &a);
  const int64_t tiles = p.B * ((p.N + kKmTileP - 1) / kKmTileP);
  const int tThreads = kKmTileP * kKmTileY;
  cudaError_t err = VA_LAUNCH(kmAssignKernel, dim3(gridFor(ctx, tiles * tThreads, tThreads)),
                              dim3(kKmTileP, kKmTileY), 0, ctx.stream, p.pixels, p.centers, p.assign,
                              p.logits, p.B, p.N, p.L, p.D);
  if (err != cudaSuccess) return err;
  err = VA_LAUNCH(kmRankKernel, dim3(gridFor(ctx, p.B * a.C * kKmChunk, kKmChunk)), dim3(kKmChunk),
                  0, ctx.stream, p.assign, a);
  if (err != cudaSuccess) return err;
  const int scanThreads = threadsFor(p.L);
  err = VA_LAUNCH(kmScanKernel, dim3(gridFor(ctx, p.B * scanThreads, scanThreads)), dim3(scanThreads),
                  0, ctx.stream, a);
  if (err != cudaSuccess) return err;
  const int64_t px = p.B * p.N;
  const int sThreads = threadsFor(px);
  err = VA_LAUNCH(kmScatterKernel, dim3(gridFor(ctx, px, sThreads)), dim3(sThreads), 0, ctx.stream,
                  p.assign, a);
  if (err != cudaSuccess) return err;
  if (p.Dv == 0) return cudaSuccess;
  err = VA_LAUNCH(kmSegmentKernel, dim3(gridFor(ctx, p.B * a.S * kKmSegThreads, kKmSegThreads)),
                  dim3(kKmSegThreads), 0, ctx.stream, p.values, a);
  if (err != cudaSuccess) return err;
  const int64_t nu = p.B * p.L * p.Dv;
  const int uThreads = threadsFor(nu);
  return VA_LAUNCH(kmUpdateKernel, dim3(gridFor(ctx, nu, uThreads)), dim3(uThreads), 0, ctx.stream,
                   p.update, a);
}

cudaError_t launchKMeansBackward(const LaunchCtx& ctx, const va::KMeansBackwardParams& p,
                                 KernelErrorRecord* err) {
  if (p.B < 0 || p.N < 0 || p.L < 0 || p.Dv < 0) return cudaErrorInvalidValue;
  const int64_t rows = p.B * p.N;
  if (rows == 0 || p.Dv == 0) return cudaSuccess;
  return VA_LAUNCH(kmBackwardKernel, dim3(gridFor(ctx, rows * 32, 32 * kKmBwdRows)),
                   dim3(32, kKmBwdRows), 0, ctx.stream, p.assign, p.dUpdate, p.dValues, p.B, p.N,
                   p.L, p.Dv, err);
}

cudaError_t launchL2Normalize(const LaunchCtx& ctx, const va::L2NormalizeParams& p) {
  if (p.rows < 0 || p.cols < 0) return cudaErrorInvalidValue;
  if (p.rows == 0 || p.cols == 0) return cudaSuccess;
  return VA_LAUNCH(l2NormalizeKernel, dim3(gridFor(ctx, p.rows * 32, 32 * kL2Rows)),
                   dim3(32, kL2Rows), 0, ctx.stream, p.x, p.y, p.rows, p.cols, p.eps);
}

cudaError_t launchL2NormalizeBackward(const LaunchCtx& ctx, const va::L2NormalizeBackwardParams& p) {
  if (p.rows < 0 || p.cols < 0) return cudaErrorInvalidValue;
  if (p.rows == 0 || p.cols == 0) return cudaSuccess;
  return VA_LAUNCH(l2NormalizeBackwardKernel, dim3(gridFor(ctx, p.rows * 32, 32 * kL2Rows)),
                   dim3(32, kL2Rows), 0, ctx.stream, p.x, p.dy, p.dx, p.rows, p.cols, p.eps);
}

VA_CUDA_NAMESPACE_END
