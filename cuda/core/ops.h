// visattn — launchers of the core kernels (cuda/core/*.cu), one per params.h struct.
// Each enqueues its kernel(s) on ctx.stream and returns the launch error (cudaSuccess when fine).
// Launchers never allocate: ops that need scratch memory report its size and take a workspace.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "common/compat.cuh"
#include "common/kernel_error.cuh"
#include "visattn/params.h"

VA_CUDA_NAMESPACE_BEGIN

struct LaunchCtx {
  cudaStream_t stream = nullptr;
  int smCount = 1;  // multiprocessors of the device (caps grid-stride grids)
};

// Blocks for a grid-stride loop over n items with `threads` per block.
inline unsigned gridFor(const LaunchCtx& ctx, int64_t n, int threads) {
  int64_t blocks = (n + threads - 1) / threads;
  int64_t cap = static_cast<int64_t>(ctx.smCount > 0 ? ctx.smCount : 1) * 16;
  if (blocks > cap) blocks = cap;
  if (blocks < 1) blocks = 1;
  return static_cast<unsigned>(blocks);
}

// Threads per block for n items: a multiple of 32 up to 256 (small ops launch small blocks; this
// also keeps the emulator, which pays per thread, fast on tiny tensors).
inline int threadsFor(int64_t n) {
  int64_t t = (n + 31) / 32 * 32;
  if (t > 256) t = 256;
  if (t < 32) t = 32;
  return static_cast<int>(t);
}

cudaError_t launchBinary(const LaunchCtx& ctx, const va::BinaryParams& p);
cudaError_t launchAffine(const LaunchCtx& ctx, const va::AffineParams& p);
cudaError_t launchUnary(const LaunchCtx& ctx, const va::UnaryParams& p);
cudaError_t launchUnaryBackward(const LaunchCtx& ctx, const va::UnaryBackwardParams& p);
cudaError_t launchFill(const LaunchCtx& ctx, const va::FillParams& p);
cudaError_t launchRandom(const LaunchCtx& ctx, const va::RandomParams& p);
cudaError_t launchCopy(const LaunchCtx& ctx, const va::CopyParams& p);
// Bytes of scratch launchReduce needs (0 when it runs in one pass; a function of the shape only).
size_t reduceWorkspace(const va::ReduceParams& p);
cudaError_t launchReduce(const LaunchCtx& ctx, const va::ReduceParams& p, void* workspace);
cudaError_t launchAvgPool2d(const LaunchCtx& ctx, const va::AvgPool2dParams& p);
cudaError_t launchAvgPool2dBackward(const LaunchCtx& ctx, const va::AvgPool2dBackwardParams& p);
cudaError_t launchSoftmax(const LaunchCtx& ctx, const va::SoftmaxParams& p);
cudaError_t launchSoftmaxBackward(const LaunchCtx& ctx, const va::SoftmaxBackwardParams& p);
cudaError_t launchLayerNorm(const LaunchCtx& ctx, const va::LayerNormParams& p);
// Bytes of device scratch launchLayerNormBackward needs (256-byte aligned pieces inside).
size_t layerNormBackwardWorkspace(const va::LayerNormBackwardParams& p);
cudaError_t launchLayerNormBackward(const LaunchCtx& ctx, const va::LayerNormBackwardParams& p,
                                    void* workspace);
// The project's own tiled fp32 GEMM (all of MatmulParams' semantics).
cudaError_t launchMatmul(const LaunchCtx& ctx, const va::MatmulParams& p);
// C_p = bias (broadcast over rows, may be null → 0) + beta·C_p for p < count (beta == 0: C is not
// read). Prepares C for a library GEMM called with beta = 1.
cudaError_t launchBiasBeta(const LaunchCtx& ctx, float* c, const float* bias, int64_t count,
                           int64_t strideC, int64_t M, int64_t N, float beta);

// ---- fused attention operators (cuda/outlook, ...) ----
cudaError_t launchOutlook(const LaunchCtx& ctx, const va::OutlookParams& p);
// Bytes of device scratch launchOutlookBackward needs (a function of the shape only).
size_t outlookBackwardWorkspace(const va::OutlookBackwardParams& p);
cudaError_t launchOutlookBackward(const LaunchCtx& ctx, const va::OutlookBackwardParams& p, void* workspace);
cudaError_t launchHalo(const LaunchCtx& ctx, const va::HaloParams& p);
// Bytes of device scratch launchHaloBackward needs (a function of the shape only).
size_t haloBackwardWorkspace(const va::HaloBackwardParams& p);
cudaError_t launchHaloBackward(const LaunchCtx& ctx, const va::HaloBackwardParams& p, void* workspace);
// ML-Decoder (cuda/group_decoder): cross-attention, group FC, dropout, multi-label losses.
cudaError_t launchDropout(const LaunchCtx& ctx, const va::DropoutParams& p);
cudaError_t launchCrossAttention(const LaunchCtx& ctx, const va::CrossAttentionParams& p);
size_t crossAttentionBackwardWorkspace(const va::CrossAttentionBackwardParams& p);
cudaError_t launchCrossAttentionBackward(const LaunchCtx& ctx, const va::CrossAttentionBackwardParams& p,
                                         void* workspace);
cudaError_t launchGroupFC(const LaunchCtx& ctx, const va::GroupFCParams& p);
size_t groupFCBackwardWorkspace(const va::GroupFCBackwardParams& p);
cudaError_t launchGroupFCBackward(const LaunchCtx& ctx, const va::GroupFCBackwardParams& p, void* workspace);
cudaError_t launchMultiLabelLoss(const LaunchCtx& ctx, const va::MultiLabelLossParams& p);
// kMaX k-means cross-attention (cuda/kmeans) and the row L2 normalisation.
size_t kmeansWorkspace(const va::KMeansParams& p);
cudaError_t launchKMeans(const LaunchCtx& ctx, const va::KMeansParams& p, void* workspace);
// An assign outside [0, L) skips its row and records (b, n, value) in *err (see kernel_error.cuh).
cudaError_t launchKMeansBackward(const LaunchCtx& ctx, const va::KMeansBackwardParams& p,
                                 KernelErrorRecord* err);
cudaError_t launchL2Normalize(const LaunchCtx& ctx, const va::L2NormalizeParams& p);
cudaError_t launchL2NormalizeBackward(const LaunchCtx& ctx, const va::L2NormalizeBackwardParams& p);

VA_CUDA_NAMESPACE_END
