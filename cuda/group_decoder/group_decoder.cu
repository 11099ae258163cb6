// visattn — launchers of the ML-Decoder kernels: cross-attention (cross_attention.cuh), group FC
// (group_fc.cuh), dropout and the multi-label losses (losses.cuh).
//
// Cross-attention path selection (a function of the shape only, so the workspace size is too):
//   fast     max(d, dv) ≤ 128: templated on DP = 32, 64, 96 or 128 (the next width ≥ max(d, dv)).
//            Tile height: 64 rows (256 threads) when that still gives at least one work item per
//            multiprocessor, else 32 rows (128 threads) for more CTAs on small problems.
//   generic  any d, dv: one thread per query / key row, global memory only; correct, slow.
// Backward = dQ kernel (writes D_i = dOut_i·out_i to the workspace), then the dK/dV kernel (reads
// it), then, when Bq = 1 < B, the ordered sum of the per-image dQ partials.
// Backward workspace (floats, 256-byte aligned pieces):
//   D        B·M·Lq
//   dQpart   B·Lq·M·d   only when Bq = 1 and B > 1
// (COCO, B = 56, Lq = 80, M = 8, d = 96: 0.14 MB + 13.8 MB.)
// Group FC and the element-wise ops need no workspace.
#include "common/compat.cuh"

#include <type_traits>

#include "core/ops.h"
#include "group_decoder/cross_attention.cuh"
#include "group_decoder/group_fc.cuh"
#include "group_decoder/losses.cuh"

VA_CUDA_NAMESPACE_BEGIN

namespace {

constexpr size_t kCaDefaultSmem = 48 * 1024;  // above this a kernel needs the opt-in attribute

int64_t caRoundUp(int64_t x, int64_t m) { return (x + m - 1) / m * m; }
int64_t caCeilDiv(int64_t x, int64_t m) { return (x + m - 1) / m; }

CaArgs caArgs(int64_t B, int64_t Bq, int64_t Lq, int64_t Lk, int heads, int d, int dv, float scale,
              float dropout, uint64_t seed) {
  CaArgs a{};
  a.B = B;
  a.Bq = Bq;
  a.Lq = Lq;
  a.Lk = Lk;
  a.heads = heads;
  a.d = d;
  a.dv = dv;
  a.scale = scale;
  a.dropout = dropout;
  a.useDropout = dropout > 0.0f;
  a.keepScale = a.useDropout ? 1.0f / (1.0f - dropout) : 1.0f;
  a.seed = seed;
  return a;
}
CaArgs caArgs(const va::CrossAttentionParams& p) {
  return caArgs(p.B, p.Bq, p.Lq, p.Lk, p.heads, p.d, p.dv, p.scale, p.dropout, p.seed);
}
CaArgs caArgs(const va::CrossAttentionBackwardParams& p) {
  return caArgs(p.B, p.Bq, p.Lq, p.Lk, p.heads, p.d, p.dv, p.scale, p.dropout, p.seed);
}

// Padded head width of the fast kernels, 0 when the generic path runs.
int caPadDim(const CaArgs& a) {
  const int w = a.d > a.dv ? a.d : a.dv;
  if (w > kCaFastMaxDim) return 0;
  return w <= 32 ? 32 : w <= 64 ? 64 : w <= 96 ? 96 : 128;
}

// Rows of the owned side: 64 when B·M·ceil(L/64) work items still cover every multiprocessor.
int caTileRows(const LaunchCtx& ctx, const CaArgs& a, int64_t L) {
  const int64_t items64 = a.B * a.heads * caCeilDiv(L, 64);
  return items64 >= (ctx.smCount > 0 ? ctx.smCount : 1) ? 64 : 32;
}

enum class CaKernel { Forward, Dq, Dkv };

CaPlan caPlan(CaKernel kind, int DP, int rows) {
  CaPlan p{};
  p.TY = rows / 4;
  p.rows = rows;
  p.ld = DP + 4;
  int64_t off = 0;
  auto take = [&](int64_t n) {
    const int at = static_cast<int>(off);
    off += caRoundUp(n, 4);
    return at;
  };
  int64_t flagBytes = 0;
  switch (kind) {
    case CaKernel::Forward:
      p.ldT = rows + 4;
      p.ldM = kCaBK + 4;
      p.offA = take(int64_t(rows) * p.ld);   // Qs
      p.offB = take(int64_t(kCaBK) * p.ld);  // Ks
      p.offC = take(int64_t(kCaBK) * p.ld);  // Vs
      p.offP = take(int64_t(kCaBK) * p.ldT);
      flagBytes = int64_t(rows) * p.ldM;
      break;
    case CaKernel::Dq:
      p.ldT = rows + 4;
      p.ldM = kCaBK + 4;
      p.offA = take(int64_t(rows) * p.ld);   // Qs
      p.offB = take(int64_t(rows) * p.ld);   // Gs
      p.offC = take(int64_t(kCaBK) * p.ld);  // Ks
      p.offD = take(int64_t(kCaBK) * p.ld);  // Vs
      p.offS = take(int64_t(kCaBK) * p.ldT);
      p.offL = take(2 * int64_t(rows));
      flagBytes = int64_t(rows) * p.ldM;
      break;
    case CaKernel::Dkv:
      p.ldT = rows + 4;
      p.ldM = rows + 4;
      p.offA = take(int64_t(rows) * p.ld);    // Ks
      p.offB = take(int64_t(rows) * p.ld);    // Vs
      p.offC = take(int64_t(kCaBQ2) * p.ld);  // Qs
      p.offD = take(int64_t(kCaBQ2) * p.ld);  // Gs
      p.offP = take(int64_t(kCaBQ2) * p.ldT);
      p.offS = take(int64_t(kCaBQ2) * p.ldT);
      p.offL = take(2 * kCaBQ2);
      flagBytes = int64_t(kCaBQ2) * p.ldM;
      break;
  }
  p.offM = static_cast<int>(off);
  p.smem = static_cast<size_t>(off) * sizeof(float) + static_cast<size_t>(caRoundUp(flagBytes, 16));
  return p;
}

// Calls f(integral_constant<DP>) for the padded width.
template <class F>
cudaError_t caDispatch(int DP, F&& f) {
  switch (DP) {
    case 32: return f(std::integral_constant<int, 32>{});
    case 64: return f(std::integral_constant<int, 64>{});
    case 96: return f(std::integral_constant<int, 96>{});
    default: return f(std::integral_constant<int, 128>{});
  }
}

template <class Kernel>
cudaError_t caAllowSmem(Kernel* kernel, size_t smem) {
  if (smem <= kCaDefaultSmem) return cudaSuccess;
  return cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem));
}

unsigned caGrid(const LaunchCtx& ctx, int64_t items, int threads) { return gridFor(ctx, items * threads, threads); }

struct CaWorkspace {
  int64_t D = 0, part = 0, total = 0;  // offsets / size in floats
  bool direct = true;                  // dQ written by the dQ kernel itself
};

CaWorkspace caWorkspace(const CaArgs& a) {
  CaWorkspace w;
  w.direct = !(a.Bq == 1 && a.B > 1);
  int64_t off = 0;
  w.D = off;
  off += caRoundUp(a.B * a.heads * a.Lq, 64);
  w.part = off;
  if (!w.direct) off += caRoundUp(a.B * a.Lq * a.heads * a.d, 64);
  w.total = off;
  return w;
}

}  // namespace

// ---------------------------------------------------------------------------- cross-attention
cudaError_t launchCrossAttention(const LaunchCtx& ctx, const va::CrossAttentionParams& p) {
  CaArgs a = caArgs(p);
  if (a.B <= 0 || a.Lq <= 0 || a.Lk <= 0 || a.heads <= 0) return cudaSuccess;
  const int DP = caPadDim(a);
  if (DP == 0) {
    const int64_t rows = a.B * a.heads * a.Lq;
    return VA_LAUNCH(caForwardGenericKernel<0>, dim3(gridFor(ctx, rows, kCaGenericThreads)),
                     dim3(kCaGenericThreads), 0, ctx.stream, p.q, p.k, p.v, p.out, p.lse, a);
  }
  const int rows = caTileRows(ctx, a, a.Lq);
  const CaPlan pl = caPlan(CaKernel::Forward, DP, rows);
  a.nTiles = static_cast<int>(caCeilDiv(a.Lq, rows));
  a.tiles = a.B * a.heads * a.nTiles;
  const int threads = 16 * pl.TY;
  return caDispatch(DP, [&](auto dpc) {
    constexpr int D = decltype(dpc)::value;
    cudaError_t e = caAllowSmem(caForwardKernel<D>, pl.smem);
    if (e != cudaSuccess) return e;
    return VA_LAUNCH(caForwardKernel<D>, dim3(caGrid(ctx, a.tiles, threads)), dim3(threads), pl.smem,
                     ctx.stream, p.q, p.k, p.v, p.out, p.lse, a, pl);
  });
}

size_t crossAttentionBackwardWorkspace(const va::CrossAttentionBackwardParams& p) {
  const CaArgs a = caArgs(p);
  if (a.B <= 0 || a.Lq <= 0 || a.Lk <= 0 || a.heads <= 0) return 0;
  return static_cast<size_t>(caWorkspace(a).total) * sizeof(float);
}

cudaError_t launchCrossAttentionBackward(const LaunchCtx& ctx, const va::CrossAttentionBackwardParams& p,
                                         void* workspace) {
  CaArgs a = caArgs(p);
  if (a.B <= 0 || a.Lq <= 0 || a.Lk <= 0 || a.heads <= 0) return cudaSuccess;
  const CaWorkspace w = caWorkspace(a);
  float* ws = static_cast<float*>(workspace);
  float* Dws = ws + w.D;
  float* dqDst = w.direct ? p.dQ : ws + w.part;
  const int DP = caPadDim(a);
  cudaError_t err;
  if (DP == 0) {
    const int64_t qRows = a.B * a.heads * a.Lq, kRows = a.B * a.heads * a.Lk;
    err = VA_LAUNCH(caBackwardDqGenericKernel<0>, dim3(gridFor(ctx, qRows, kCaGenericThreads)),
                    dim3(kCaGenericThreads), 0, ctx.stream, p.q, p.k, p.v, p.out, p.lse, p.dOut,
                    dqDst, w.direct, Dws, a);
    if (err != cudaSuccess) return err;
    err = VA_LAUNCH(caBackwardDkvGenericKernel<0>, dim3(gridFor(ctx, kRows, kCaGenericThreads)),
                    dim3(kCaGenericThreads), 0, ctx.stream, p.q, p.k, p.v, p.lse, p.dOut, Dws, p.dK,
                    p.dV, a);
  } else {
    err = caDispatch(DP, [&](auto dpc) {
      constexpr int D = decltype(dpc)::value;
      // dQ (and D)
      const int qRows = caTileRows(ctx, a, a.Lq);
      const CaPlan pq = caPlan(CaKernel::Dq, D, qRows);
      CaArgs aq = a;
      aq.nTiles = static_cast<int>(caCeilDiv(a.Lq, qRows));
      aq.tiles = a.B * a.heads * aq.nTiles;
      cudaError_t e = caAllowSmem(caBackwardDqKernel<D>, pq.smem);
      if (e != cudaSuccess) return e;
      e = VA_LAUNCH(caBackwardDqKernel<D>, dim3(caGrid(ctx, aq.tiles, 4 * qRows)), dim3(4 * qRows),
                    pq.smem, ctx.stream, p.q, p.k, p.v, p.out, p.lse, p.dOut, dqDst, w.direct, Dws,
                    aq, pq);
      if (e != cudaSuccess) return e;
      // dK, dV
      const int kRows = caTileRows(ctx, a, a.Lk);
      const CaPlan pk = caPlan(CaKernel::Dkv, D, kRows);
      CaArgs ak = a;
      ak.nTiles = static_cast<int>(caCeilDiv(a.Lk, kRows));
      ak.tiles = a.B * a.heads * ak.nTiles;
      e = caAllowSmem(caBackwardDkvKernel<D>, pk.smem);
      if (e != cudaSuccess) return e;
      return VA_LAUNCH(caBackwardDkvKernel<D>, dim3(caGrid(ctx, ak.tiles, 4 * kRows)), dim3(4 * kRows),
                       pk.smem, ctx.stream, p.q, p.k, p.v, p.lse, p.dOut, Dws, p.dK, p.dV, ak, pk);
    });
  }
  if (err != cudaSuccess || w.direct) return err;
  const int64_t n = a.Lq * a.heads * a.d;
  const int t = threadsFor(n);
  return VA_LAUNCH(caBatchSumKernel<0>, dim3(gridFor(ctx, n, t)), dim3(t), 0, ctx.stream,
                   static_cast<const float*>(dqDst), p.dQ, a.B, n);
}

// ---------------------------------------------------------------------------- group FC
namespace {
GfcArgs gfcArgs(int64_t B, int64_t K, int64_t D, int64_t g, int64_t N) {
  GfcArgs a{};
  a.B = B;
  a.K = K;
  a.D = D;
  a.g = g;
  a.N = N;
  int sj = 1;
  while (sj < 32 && sj < g) sj *= 2;
  a.SJ = sj;
  a.nJC = (g + sj - 1) / sj;
  a.nDC = (D + kGfcBD - 1) / kGfcBD;
  return a;
}
}  // namespace

cudaError_t launchGroupFC(const LaunchCtx& ctx, const va::GroupFCParams& p) {
  GfcArgs a = gfcArgs(p.B, p.K, p.D, p.g, p.N);
  if (a.B <= 0 || a.K <= 0 || a.g <= 0 || a.N <= 0) return cudaSuccess;
  a.items = a.K * a.nJC;
  return VA_LAUNCH(gfcForwardKernel<0>, dim3(gridFor(ctx, a.items * kGfcThreads, kGfcThreads)),
                   dim3(kGfcThreads), 0, ctx.stream, p.x, p.w, p.bias, p.out, a);
}

size_t groupFCBackwardWorkspace(const va::GroupFCBackwardParams&) { return 0; }

cudaError_t launchGroupFCBackward(const LaunchCtx& ctx, const va::GroupFCBackwardParams& p, void*) {
  GfcArgs a = gfcArgs(p.B, p.K, p.D, p.g, p.N);
  if (a.B <= 0 || a.K <= 0 || a.g <= 0 || a.N <= 0 || a.D <= 0) return cudaSuccess;
  a.items = a.K * a.nDC;
  return VA_LAUNCH(gfcBackwardKernel<0>, dim3(gridFor(ctx, a.items * kGfcThreads, kGfcThreads)),
                   dim3(kGfcThreads), 0, ctx.stream, p.x, p.w, p.dOut, p.dX, p.dW, p.dBias, a);
}

// ---------------------------------------------------------------------------- element-wise
cudaError_t launchDropout(const LaunchCtx& ctx, const va::DropoutParams& p) {
  if (p.n <= 0) return cudaSuccess;
  const int64_t groups = (p.n + 3) / 4;
  const int t = threadsFor(groups);
  return VA_LAUNCH(dropoutKernel<0>, dim3(gridFor(ctx, groups, t)), dim3(t), 0, ctx.stream, p.x, p.out,
                   p.n, p.p, p.seed, p.offset);
}

cudaError_t launchMultiLabelLoss(const LaunchCtx& ctx, const va::MultiLabelLossParams& p) {
  if (p.n <= 0) return cudaSuccess;
  MlLossArgs a{};
  a.n = p.n;
  a.kind = p.kind == va::MultiLabelLossKind::Bce ? 1 : 0;
  a.gammaPos = p.gammaPos;
  a.gammaNeg = p.gammaNeg;
  a.clip = p.clip;
  a.eps = p.eps;
  a.logEps = p.eps > 0.0f ? logf(p.eps) : -INFINITY;
  a.focalGrad = p.focalGrad;
  const int t = threadsFor(p.n);
  return VA_LAUNCH(multiLabelLossKernel<0>, dim3(gridFor(ctx, p.n, t)), dim3(t), 0, ctx.stream, p.logits,
                   p.targets, p.loss, p.grad, a);
}

VA_CUDA_NAMESPACE_END
