// visattn — launchers of the VOLO outlook attention kernels (cuda/outlook/outlook.cuh).
#include "common/compat.cuh"

#include "core/ops.h"
#include "outlook/outlook.cuh"

VA_CUDA_NAMESPACE_BEGIN

namespace {
OutlookArgs outlookArgs(int64_t B, int64_t H, int64_t W, int64_t C, int64_t h, int64_t w,
                        int heads, int kernel, int pad, int stride, float scale) {
  OutlookArgs a;
  a.B = B;
  a.H = H;
  a.W = W;
  a.C = C;
  a.h = h;
  a.w = w;
  a.heads = heads;
  a.d = static_cast<int>(C / heads);
  a.kernel = kernel;
  a.K2 = kernel * kernel;
  a.pad = pad;
  a.stride = stride;
  a.scale = scale;
  return a;
}

constexpr size_t kOutlookSmemLimit = 48 * 1024;  // no opt-in needed

// Kernel/stride pairs with templated cell kernels; others run the simple kernels.
bool outlookFastGeom(int k, int s) { return (k == 3 || k == 5) && (s == 1 || s == 2); }
// ... and with the one-pass fused backward (at most 2×2 windows per cell).
bool outlookFusedGeom(int k, int s) { return k == 3 && s == 2; }

// Row stride of the Gw / Vw shared tiles: odd, or when d % 4 == 0 a multiple of 4 with ld/4 odd
// (float4 reads; the rows one warp reads sit in distinct banks).
int64_t outlookTileLd(int64_t d) {
  return d % 4 == 0 ? (d / 4 % 2 == 0 ? d + 4 : d + 8) : (d % 2 == 0 ? d + 1 : d);
}

enum class CellMode { Forward, Dv, FusedBackward };

struct CellPlan {
  OutlookCells cells;
  int threads = 0;
  size_t smem = 0;
  int ld = 0;  // FusedBackward only
};

// Tiling of the cell kernels; false when they cannot run (geometry, shared memory, 32-bit counts).
bool outlookCellPlan(int64_t B, int64_t H, int64_t W, int64_t C, int heads, int k, int pad, int s,
                     CellMode mode, CellPlan* plan) {
  if (!outlookFastGeom(k, s)) return false;
  if (mode == CellMode::FusedBackward && !outlookFusedGeom(k, s)) return false;
  const int64_t d = C / heads;
  // heads per tile: the largest divisor of heads with HB·d <= 32 (a warp's worth of channels)
  int hb = 1;
  for (int c = 1; c <= heads; ++c)
    if (heads % c == 0 && c * d <= 32) hb = c;
  const int64_t cb = hb * d;
  const int64_t nwin = (k - 1) / s + 1, k2 = static_cast<int64_t>(k) * k;
  const int64_t kp = (k2 + 3) / 4 * 4;  // OutlookGeom::KP
  const int64_t slots = nwin * nwin * s * s;
  const int64_t ld = outlookTileLd(d);
  // floats per cell: As (+ Gs, Vs, Ls for the fused backward)
  int64_t perCellFloats = hb * slots * kp;
  if (mode == CellMode::FusedBackward) perCellFloats += hb * (2 * k2 * ld + 2 * nwin * nwin * k2);
  const size_t perCell = static_cast<size_t>(perCellFloats) * sizeof(float);
  if (perCell > kOutlookSmemLimit) return false;
  // the fused backward starts at cell 0: cell (i, j) owns window (i, j)
  const int64_t c0 = mode == CellMode::FusedBackward ? 0 : pad / s;
  const int64_t nCy = (H + pad + s - 1) / s - c0, nCx = (W + pad + s - 1) / s - c0;
  const int64_t total = B * nCy * nCx;
  if (total * heads >= (int64_t(1) << 31)) return false;  // 32-bit cell / tile indices
  OutlookCells& cells = plan->cells;
  cells.c0y = cells.c0x = static_cast<int>(c0);
  cells.nCy = static_cast<int>(nCy);
  cells.nCx = static_cast<int>(nCx);
  cells.total = static_cast<int>(total);
  int64_t nc = cb >= kOutlookMaxThreads ? 1 : kOutlookMaxThreads / cb;
  const int64_t bySmem = static_cast<int64_t>(kOutlookSmemLimit / perCell);
  if (nc > bySmem) nc = bySmem;
  if (nc > total) nc = total;
  if (nc < 1) nc = 1;
  cells.cellsPerBlock = static_cast<int>(nc);
  cells.headsPerBlock = hb;
  // at most kOutlookMaxThreads threads, items spread evenly over the passes
  const int64_t items = nc * cb;
  const int64_t passes = (items + kOutlookMaxThreads - 1) / kOutlookMaxThreads;
  plan->threads = static_cast<int>(((items + passes - 1) / passes + 31) / 32 * 32);
  plan->smem = perCell * static_cast<size_t>(nc);
  plan->ld = static_cast<int>(ld);
  return true;
}

dim3 cellGrid(const LaunchCtx& ctx, const OutlookArgs& a, const CellPlan& plan) {
  const int64_t nTiles = (plan.cells.total + plan.cells.cellsPerBlock - 1) /
                         plan.cells.cellsPerBlock * (a.heads / plan.cells.headsPerBlock);
  return dim3(gridFor(ctx, nTiles * plan.threads, plan.threads));
}

template <bool BWD>
cudaError_t launchCells(const LaunchCtx& ctx, const OutlookArgs& a, const CellPlan& plan,
                        const float* X, const float* L, const float* lse, float* out) {
  const dim3 grid = cellGrid(ctx, a, plan), block(plan.threads);
  const size_t smem = plan.smem;
  const OutlookCells& cells = plan.cells;
  if (a.kernel == 3 && a.stride == 1)
    return VA_LAUNCH((outlookCellKernel<3, 1, BWD>), grid, block, smem, ctx.stream, X, L, lse,
                     out, a, cells);
  if (a.kernel == 3 && a.stride == 2)
    return VA_LAUNCH((outlookCellKernel<3, 2, BWD>), grid, block, smem, ctx.stream, X, L, lse,
                     out, a, cells);
  if (a.kernel == 5 && a.stride == 1)
    return VA_LAUNCH((outlookCellKernel<5, 1, BWD>), grid, block, smem, ctx.stream, X, L, lse,
                     out, a, cells);
  return VA_LAUNCH((outlookCellKernel<5, 2, BWD>), grid, block, smem, ctx.stream, X, L, lse, out,
                   a, cells);
}

// Window-head tiling of the backward window kernel (two-pass backward); false when it cannot run.
bool outlookWindowPlan(int k, int64_t d, int* perBlock, int* ld, int* threads, size_t* smem) {
  if (k != 3 && k != 5) return false;
  const int64_t k2 = static_cast<int64_t>(k) * k;
  const int64_t pad = outlookTileLd(d);
  auto bytes = [&](int64_t pb) {
    return static_cast<size_t>(outlookRowTableBytes(static_cast<int>(pb * k2))) +
           static_cast<size_t>((pb * k2 * k2 + 3) / 4 * 4 + 2 * pb * k2 * pad) * sizeof(float);
  };
  int64_t pb = kOutlookMaxThreads / k2;
  while (pb > 0 && bytes(pb) > kOutlookSmemLimit) --pb;
  if (pb < 1) return false;
  *perBlock = static_cast<int>(pb);
  *ld = static_cast<int>(pad);
  *threads = static_cast<int>((pb * k2 + 31) / 32 * 32);
  *smem = bytes(pb);
  return true;
}

// Which backward runs: the one-pass fused kernel, the two-pass window + dV kernels (workspace:
// (max, 1/sum) per softmax row), or the simple kernels (workspace: the probabilities A).
enum class BackwardPath { Fused, TwoPass, Simple };

BackwardPath outlookBackwardPath(const va::OutlookBackwardParams& p, CellPlan* plan) {
  CellPlan local;
  if (plan == nullptr) plan = &local;
  if (p.h <= 0 || p.w <= 0) return BackwardPath::Simple;
  if (outlookCellPlan(p.B, p.H, p.W, p.C, p.heads, p.kernel, p.pad, p.stride,
                      CellMode::FusedBackward, plan))
    return BackwardPath::Fused;
  int perBlock, ld, threads;
  size_t smem;
  if (outlookCellPlan(p.B, p.H, p.W, p.C, p.heads, p.kernel, p.pad, p.stride, CellMode::Dv,
                      plan) &&
      outlookWindowPlan(p.kernel, p.C / p.heads, &perBlock, &ld, &threads, &smem))
    return BackwardPath::TwoPass;
  return BackwardPath::Simple;
}
}  // namespace

cudaError_t launchOutlook(const LaunchCtx& ctx, const va::OutlookParams& p) {
  const OutlookArgs a = outlookArgs(p.B, p.H, p.W, p.C, p.h, p.w, p.heads, p.kernel, p.pad,
                                    p.stride, p.scale);
  const int64_t total = p.B * p.H * p.W * p.C;
  if (total == 0) return cudaSuccess;
  CellPlan plan;
  if (p.h > 0 && p.w > 0 &&
      outlookCellPlan(p.B, p.H, p.W, p.C, p.heads, p.kernel, p.pad, p.stride, CellMode::Forward,
                      &plan))
    return launchCells<false>(ctx, a, plan, p.v, p.logits, nullptr, p.out);
  const int t = threadsFor(total);
  return VA_LAUNCH(outlookForwardSimpleKernel<0>, dim3(gridFor(ctx, total, t)), dim3(t), 0,
                   ctx.stream, p.v, p.logits, p.out, a);
}

size_t outlookBackwardWorkspace(const va::OutlookBackwardParams& p) {
  const int64_t k2 = static_cast<int64_t>(p.kernel) * p.kernel;
  const int64_t rows = p.B * p.h * p.w * p.heads * k2;
  int64_t n = 0;
  switch (outlookBackwardPath(p, nullptr)) {
    case BackwardPath::Fused: n = 0; break;
    case BackwardPath::TwoPass: n = 2 * rows; break;
    case BackwardPath::Simple: n = rows * k2; break;
  }
  return static_cast<size_t>(n > 0 ? n : 0) * sizeof(float);
}

cudaError_t launchOutlookBackward(const LaunchCtx& ctx, const va::OutlookBackwardParams& p,
                                  void* workspace) {
  const OutlookArgs a = outlookArgs(p.B, p.H, p.W, p.C, p.h, p.w, p.heads, p.kernel, p.pad,
                                    p.stride, p.scale);
  float* ws = static_cast<float*>(workspace);
  const int64_t rows = p.B * p.h * p.w * p.heads * a.K2;
  const int64_t total = p.B * p.H * p.W * p.C;
  if (total == 0) return cudaSuccess;
  CellPlan plan;
  const BackwardPath path = outlookBackwardPath(p, &plan);
  if (path == BackwardPath::Fused)
    return VA_LAUNCH((outlookFusedBackwardKernel<3, 2>), cellGrid(ctx, a, plan), dim3(plan.threads),
                     plan.smem, ctx.stream, p.v, p.logits, p.dOut, p.dV, p.dLogits, a, plan.cells,
                     plan.ld);
  if (path == BackwardPath::TwoPass) {
    int perBlock, ld, wThreads;
    size_t wSmem;
    outlookWindowPlan(p.kernel, a.d, &perBlock, &ld, &wThreads, &wSmem);
    const int64_t totalWh = rows / a.K2;
    const int64_t nTiles = (totalWh + perBlock - 1) / perBlock;
    const dim3 grid(gridFor(ctx, nTiles * wThreads, wThreads)), block(wThreads);
    const bool vec = a.d % 4 == 0 && reinterpret_cast<uintptr_t>(p.v) % 16 == 0 &&
                     reinterpret_cast<uintptr_t>(p.dOut) % 16 == 0;
    cudaError_t err =
        p.kernel == 3
            ? VA_LAUNCH(outlookWindowBackwardKernel<3>, grid, block, wSmem, ctx.stream, p.v,
                        p.logits, p.dOut, p.dLogits, ws, a, perBlock, ld, vec)
            : VA_LAUNCH(outlookWindowBackwardKernel<5>, grid, block, wSmem, ctx.stream, p.v,
                        p.logits, p.dOut, p.dLogits, ws, a, perBlock, ld, vec);
    if (err != cudaSuccess) return err;
    return launchCells<true>(ctx, a, plan, p.dOut, p.logits, ws, p.dV);
  }
  if (rows > 0) {
    const int t = threadsFor(rows);
    cudaError_t err = VA_LAUNCH(outlookBackwardRowSimpleKernel<0>, dim3(gridFor(ctx, rows, t)),
                                dim3(t), 0, ctx.stream, p.v, p.logits, p.dOut, ws, p.dLogits, a);
    if (err != cudaSuccess) return err;
  }
  const int t = threadsFor(total);
  return VA_LAUNCH(outlookBackwardDvSimpleKernel<0>, dim3(gridFor(ctx, total, t)), dim3(t), 0,
                   ctx.stream, ws, p.dOut, p.dV, a);
}

VA_CUDA_NAMESPACE_END
