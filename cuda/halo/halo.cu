// visattn — launchers of the HaloNet halo attention kernels (cuda/halo/halo.cuh).
//
// Path selection (a function of the shape only, so the workspace size is too):
//   fast     dk ≤ 64 and dv ≤ 64 and a query group + one window row of K/V fit the shared budget
//            (forward 48 KB: no opt-in; backward 80 KB: opt-in, 2 CTAs per SM on A100 and H100).
//            The register widths DK, DV ∈ {16, 32, 64} are the next ones ≥ dk, dv.
//   generic  everything else (any dk, dv, block, halo): global memory only, one thread per query /
//            window key; correct for every valid shape, slow.
//
// Backward workspace (floats, each piece 256-byte aligned), tiles = B·(H/b)·(W/b)·M, nRel = 2·win − 1:
//   dKwin  tiles·win²·dk      dVwin  tiles·win²·dv      relPart  tiles·2·nRel·dk
//   relL1  slices·2·nRel·dk   (only when slices = ceil(tiles / 256) > 1: first reduction level)
//   generic path only: D  tiles·b_q²   Sh|Sw  tiles·b_q²·2·win
// Target (halonet50ts s3, B = 64): dKwin + dVwin 103 MB, relPart 14 MB, relL1 55 KB.
#include "common/compat.cuh"

#include <type_traits>

#include "core/ops.h"
#include "halo/halo.cuh"

VA_CUDA_NAMESPACE_BEGIN

namespace {

constexpr size_t kHaloFwdSmemBudget = 48 * 1024;
constexpr size_t kHaloBwdSmemBudget = 80 * 1024;
constexpr size_t kHaloDefaultSmem = 48 * 1024;  // above this a kernel needs the opt-in attribute
constexpr int kHaloFastMaxDim = 64;

HaloArgs haloArgs(int64_t B, int64_t H, int64_t W, int heads, int dk, int dv, int block, int halo,
                  int stride, float scale, bool scalePosEmbed) {
  HaloArgs a;
  a.B = B;
  a.H = H;
  a.W = W;
  a.heads = heads;
  a.dk = dk;
  a.dv = dv;
  a.b = block;
  a.h = halo;
  a.win = block + 2 * halo;
  a.bq = stride == 2 ? block / 2 : block;
  a.Hq = H / stride;
  a.Wq = W / stride;
  a.nbH = static_cast<int>(H / block);
  a.nbW = static_cast<int>(W / block);
  a.nq = a.bq * a.bq;
  a.nk = a.win * a.win;
  a.tiles = B * a.nbH * a.nbW * heads;
  a.scale = scale;
  a.posScale = scalePosEmbed ? scale : 1.0f;
  return a;
}

HaloArgs haloArgs(const va::HaloParams& p) {
  return haloArgs(p.B, p.H, p.W, p.heads, p.dk, p.dv, p.block, p.halo, p.stride, p.scale,
                  p.scalePosEmbed);
}
HaloArgs haloArgs(const va::HaloBackwardParams& p) {
  return haloArgs(p.B, p.H, p.W, p.heads, p.dk, p.dv, p.block, p.halo, p.stride, p.scale,
                  p.scalePosEmbed);
}

int haloPadDim(int d) { return d <= 16 ? 16 : d <= 32 ? 32 : 64; }
int64_t roundUp(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// Tiling of the fast kernels; false when they cannot run (then the generic path does).
bool haloPlan(const HaloArgs& a, bool backward, HaloPlan* pl) {
  if (a.dk > kHaloFastMaxDim || a.dv > kHaloFastMaxDim) return false;
  const int64_t DK = haloPadDim(a.dk), DV = haloPadDim(a.dv);
  const int64_t win = a.win;
  const size_t budget = backward ? kHaloBwdSmemBudget : kHaloFwdSmemBudget;
  for (int qgMax = 64; qgMax >= 1; qgMax /= 2) {
    HaloPlan p{};
    p.nGroups = (a.nq + qgMax - 1) / qgMax;
    p.QG = (a.nq + p.nGroups - 1) / p.nGroups;
    p.NS = 1;
    while (p.NS < 8 && p.QG * p.NS * 2 <= kHaloMaxThreads) p.NS *= 2;
    const int threads = static_cast<int>(roundUp(static_cast<int64_t>(p.QG) * p.NS, 32));
    p.QGp = threads / p.NS;
    p.ldK = static_cast<int>(DK + 4);
    p.ldV = static_cast<int>(DV + 4);
    p.ldR = static_cast<int>(2 * win + 1);
    const int64_t QGp = p.QGp;
    // floats for `rows` window rows per chunk; fills the offsets
    auto layout = [&](int64_t rows) -> int64_t {
      const int64_t KC = rows * win;
      int64_t off = 0;
      if (backward) {
        p.offQ = static_cast<int>(off);
        off += QGp * p.ldK;
        p.offG = static_cast<int>(off);
        off += QGp * p.ldV;
      }
      p.offK = static_cast<int>(off);
      off += KC * p.ldK;
      p.offV = static_cast<int>(off);
      off += KC * p.ldV;
      p.offR = static_cast<int>(off);
      off += roundUp(QGp * p.ldR, 4);
      if (backward) {
        p.offSr = static_cast<int>(off);
        off += roundUp(QGp * p.ldR, 4);
        // ldS/NS odd: the lanes (query, split) of a warp write dS / P in distinct banks
        int64_t ldS = roundUp(KC, p.NS);
        if ((ldS / p.NS) % 2 == 0) ldS += p.NS;
        p.ldS = static_cast<int>(ldS);
        p.offDS = static_cast<int>(off);
        off += QGp * ldS;
        p.offP = static_cast<int>(off);
        off += QGp * ldS;
      }
      return off;
    };
    for (int64_t rows = win; rows >= 1; --rows) {
      if (static_cast<size_t>(layout(rows)) * sizeof(float) > budget) continue;
      p.nChunks = static_cast<int>((win + rows - 1) / rows);
      p.rowsPerChunk = static_cast<int>((win + p.nChunks - 1) / p.nChunks);  // balanced, ≤ rows
      p.smem = static_cast<size_t>(layout(p.rowsPerChunk)) * sizeof(float);
      *pl = p;
      return true;
    }
  }
  return false;
}

// Calls f(integral_constant<DK>, integral_constant<DV>) for the padded widths of the shape.
template <int DK, class F>
cudaError_t haloDispatchDv(int dvPad, F&& f) {
  if (dvPad == 16) return f(std::integral_constant<int, DK>{}, std::integral_constant<int, 16>{});
  if (dvPad == 32) return f(std::integral_constant<int, DK>{}, std::integral_constant<int, 32>{});
  return f(std::integral_constant<int, DK>{}, std::integral_constant<int, 64>{});
}
template <class F>
cudaError_t haloDispatch(const HaloArgs& a, F&& f) {
  const int dkPad = haloPadDim(a.dk), dvPad = haloPadDim(a.dv);
  if (dkPad == 16) return haloDispatchDv<16>(dvPad, f);
  if (dkPad == 32) return haloDispatchDv<32>(dvPad, f);
  return haloDispatchDv<64>(dvPad, f);
}

unsigned haloGrid(const LaunchCtx& ctx, const HaloArgs& a, int threads) {
  return gridFor(ctx, a.tiles * threads, threads);
}

// Backward workspace layout (offsets in floats).
struct HaloWorkspace {
  bool fast = false;
  HaloPlan plan{};
  int64_t C = 0;         // columns of a dRel partial: 2·nRel·dk
  int64_t slices = 1;    // first reduction level: slices of ≤ perSlice partials
  int64_t perSlice = 0;
  int64_t dK = 0, dV = 0, part = 0, l1 = 0, D = 0, S = 0, total = 0;
};

HaloWorkspace haloWorkspace(const HaloArgs& a) {
  HaloWorkspace w;
  w.fast = haloPlan(a, true, &w.plan);
  const int64_t nRel = 2 * static_cast<int64_t>(a.win) - 1;
  w.C = 2 * nRel * a.dk;
  const int64_t P = a.tiles;
  w.slices = (P + 255) / 256;
  if (w.slices > 65535) w.slices = 65535;  // gridDim.y
  w.perSlice = (P + w.slices - 1) / w.slices;
  int64_t off = 0;
  auto piece = [&](int64_t n) {
    const int64_t at = off;
    off += roundUp(n, 64);
    return at;
  };
  w.dK = piece(a.tiles * a.nk * a.dk);
  w.dV = piece(a.tiles * a.nk * a.dv);
  w.part = piece(a.tiles * w.C);
  w.l1 = piece(w.slices > 1 ? w.slices * w.C : 0);
  if (!w.fast) {
    w.D = piece(a.tiles * a.nq);
    w.S = piece(a.tiles * a.nq * 2 * a.win);
  }
  w.total = off;
  return w;
}

}  // namespace

cudaError_t launchHalo(const LaunchCtx& ctx, const va::HaloParams& p) {
  const HaloArgs a = haloArgs(p);
  if (a.tiles <= 0) return cudaSuccess;
  HaloPlan pl;
  if (haloPlan(a, false, &pl)) {
    const dim3 grid(haloGrid(ctx, a, pl.QGp * pl.NS)), block(pl.QGp * pl.NS);
    return haloDispatch(a, [&](auto dkc, auto dvc) {
      constexpr int DK = decltype(dkc)::value, DV = decltype(dvc)::value;
      return VA_LAUNCH((haloForwardKernel<DK, DV>), grid, block, pl.smem, ctx.stream, p.q, p.k, p.v,
                       p.relH, p.relW, p.out, p.lse, a, pl);
    });
  }
  return VA_LAUNCH(haloForwardGenericKernel<0>, dim3(haloGrid(ctx, a, kHaloGenericThreads)),
                   dim3(kHaloGenericThreads), 0, ctx.stream, p.q, p.k, p.v, p.relH, p.relW, p.out,
                   p.lse, a);
}

size_t haloBackwardWorkspace(const va::HaloBackwardParams& p) {
  const HaloArgs a = haloArgs(p);
  if (a.tiles <= 0) return 0;
  return static_cast<size_t>(haloWorkspace(a).total) * sizeof(float);
}

cudaError_t launchHaloBackward(const LaunchCtx& ctx, const va::HaloBackwardParams& p,
                               void* workspace) {
  const HaloArgs a = haloArgs(p);
  if (a.tiles <= 0) return cudaSuccess;
  const HaloWorkspace w = haloWorkspace(a);
  float* ws = static_cast<float*>(workspace);
  float *dKwin = ws + w.dK, *dVwin = ws + w.dV, *part = ws + w.part;
  cudaError_t err;
  if (w.fast) {
    const HaloPlan& pl = w.plan;
    const dim3 grid(haloGrid(ctx, a, pl.QGp * pl.NS)), block(pl.QGp * pl.NS);
    err = haloDispatch(a, [&](auto dkc, auto dvc) {
      constexpr int DK = decltype(dkc)::value, DV = decltype(dvc)::value;
      if (pl.smem > kHaloDefaultSmem) {
        const cudaError_t e = cudaFuncSetAttribute(haloBackwardKernel<DK, DV>,
                                                   cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                   static_cast<int>(pl.smem));
        if (e != cudaSuccess) return e;
      }
      return VA_LAUNCH((haloBackwardKernel<DK, DV>), grid, block, pl.smem, ctx.stream, p.q, p.k,
                       p.v, p.relH, p.relW, p.out, p.lse, p.dOut, p.dQ, dKwin, dVwin, part, a, pl);
    });
  } else {
    err = VA_LAUNCH(haloBackwardGenericKernel<0>, dim3(haloGrid(ctx, a, kHaloGenericThreads)),
                    dim3(kHaloGenericThreads), 0, ctx.stream, p.q, p.k, p.v, p.relH, p.relW, p.out,
                    p.lse, p.dOut, p.dQ, dKwin, dVwin, part, ws + w.D, ws + w.S, a);
  }
  if (err != cudaSuccess) return err;
  // dK, dV: ordered gather over the windows
  const int64_t nGather = a.B * a.H * a.W * a.heads * (a.dk + a.dv);
  const int gt = threadsFor(nGather);
  err = VA_LAUNCH(haloGatherKernel<0>, dim3(gridFor(ctx, nGather, gt)), dim3(gt), 0, ctx.stream,
                  dKwin, dVwin, p.dK, p.dV, a);
  if (err != cudaSuccess) return err;
  // dRelH, dRelW: ordered reduction of the per-tile partials (two levels when there are many)
  const int64_t half = w.C / 2;
  const unsigned colBlocks = static_cast<unsigned>((w.C + 31) / 32);
  if (w.slices > 1) {
    float* l1 = ws + w.l1;
    err = VA_LAUNCH(haloRelReduceKernel<0>, dim3(colBlocks, static_cast<unsigned>(w.slices)),
                    dim3(kHaloReduceThreads), 0, ctx.stream, part, a.tiles, w.C, w.perSlice, l1,
                    l1 + half, half, w.C);
    if (err != cudaSuccess) return err;
    return VA_LAUNCH(haloRelReduceKernel<0>, dim3(colBlocks, 1), dim3(kHaloReduceThreads), 0,
                     ctx.stream, l1, w.slices, w.C, w.slices, p.dRelH, p.dRelW, half, int64_t(0));
  }
  return VA_LAUNCH(haloRelReduceKernel<0>, dim3(colBlocks, 1), dim3(kHaloReduceThreads), 0,
                   ctx.stream, part, a.tiles, w.C, a.tiles, p.dRelH, p.dRelW, half, int64_t(0));
}

VA_CUDA_NAMESPACE_END
