// visattn — HaloNet halo attention (HaloParams / HaloBackwardParams in visattn/params.h; spec §3).
// Layouts are channels-last: q[B,Hq,Wq,M,dk], k[B,H,W,M,dk], v[B,H,W,M,dv], relH/relW[2·win−1,dk].
//
// A "tile" is one (image n, block (I,J), head m) — the unit of one CTA. Its queries are the b_q×b_q
// query-map pixels of block (I,J); its keys/values the win×win haloed window, read straight from
// the unpadded maps (pixels outside the image are zero keys/values, still attended). Tiles are
// numbered ((n·nbH + I)·nbW + J)·M + m (head fastest: neighbouring CTAs read the same pixels).
//
// Kernels
//   haloForwardKernel<DK,DV>    fast forward, one CTA per tile (grid-stride over tiles)
//   haloBackwardKernel<DK,DV>   fast backward: dQ; dK_win, dV_win and dRel partials → workspace
//   haloForwardGenericKernel    any dk / dv / window: global memory only, one thread per query
//   haloBackwardGenericKernel   likewise for the backward
//   haloGatherKernel            dK, dV = Σ over the (fixed-order) windows reading each pixel
//   haloRelReduceKernel         dRelH, dRelW = ordered sum of the per-tile partials (two levels)
// DK, DV ∈ {16, 32, 64} are register capacities: dk ≤ DK, dv ≤ DV are zero-padded (the pads add
// exact zeros), so the fast kernels serve every dk, dv ≤ 64. No floating-point atomics anywhere:
// every sum has an order fixed by the shape, so results are bitwise reproducible run to run.
//
// Fast forward (per tile):
//   * Queries are processed in groups of QG ≤ 64; each query has NS threads ("splits", adjacent
//     lanes: tid = qi·NS + s, NS a power of two ≤ 8 with NS·QG ≤ 256, so 4 or 8) that take every
//     NS-th key of the window.
//   * Per query, the relative logits are precomputed per axis (the rel→abs trick):
//       Rs[qi][ky]       = f·q_i·relH[ky − qy + win − 1]
//       Rs[qi][win + kx] = f·q_i·relW[kx − qx + win − 1]          (f = scale if scalePosEmbed else 1)
//     so S[i,(ky,kx)] = scale·q_i·k + Rs[qi][ky] + Rs[qi][win+kx] costs dk FMAs + 2 shared loads.
//   * The window is staged in shared memory in chunks of whole window rows (K and V, zero-filled
//     outside the image and beyond dk/dv). With one chunk the window stays staged across groups.
//   * Each thread keeps q (DK registers) and an online-softmax state (max, sum, o[DV]) over its
//     keys, rescaling only when its max grows; the NS splits merge with xor-shuffles in a fixed
//     order; out = o / l and lse = max + log(l).
// Fast backward (per tile, same query groups/splits; D_i = dOut_i·out_i computed in the CTA):
//   per key chunk: phase A (thread = query split): P = exp(S − lse), dP = dOut·v, dS = P(dP − D);
//   dQ accumulates in registers (q in registers, dOut read from shared memory); dS and P go to
//   shared tiles. Phase B (thread = (key, 16-wide slice of the head dims)): dK_win = scale·dSᵀq,
//   dV_win = Pᵀ dOut → workspace (summed over query groups by the same thread). Then the per-axis
//   row sums of dR = f·dS: Sh[i,ky] = Σ_kx dR, Sw[i,kx] = Σ_ky dR (Sw accumulates over chunks).
//   After the chunks: dQ_i = scale·Σ dS·k + Σ_ky Sh·relH[·] + Σ_kx Sw·relW[·] (written directly:
//   every query belongs to exactly one tile), and the tile's dRel partial
//   part[tab][r][e] = Σ over (query, key row/column) pairs with table row r of Sh (Sw)·q_i[e].
//
// Performance intent (nothing here has been timed: this machine has no GPU). Target halonet50ts
// stage 3: B = 64, 16×16 map, M = 8, dk = dv = 32, b = 8, h = 3 (win = 14) → 2048 tiles of 64
// queries × 196 keys; ≈ 55 MFLOP of attention core per image, 3.5 GFLOP per call, while q, k, v,
// out are 17 MB each: FP32-FMA bound (≈ 60 µs at H100 FP32 peak), not DRAM bound.
//   forward  <32,32>: 256 threads (NS = 4), 2 chunks of 7 rows, 35.6 KB shared (no opt-in),
//            128 registers (ptxas, sm_90) → 2 CTAs = 16 warps per SM.
//   backward <32,32>: 256 threads, 4 chunks of ≤ 4 rows, 78 KB shared (opt-in), 127 registers
//            (__launch_bounds__(256, 2), no spills) → 2 CTAs per SM on A100 and H100. Its window
//            gradients go through the workspace (103 MB written once and gathered once).
//   64-wide variants: ≈ 250 registers, 1 CTA per SM.
// Shared rows have stride DK + 4 (DV + 4) floats: the NS different K/V rows a warp reads with
// float4 loads fall into distinct banks; dS/P rows have stride ldS with ldS/NS odd, so the lanes of
// a warp write distinct banks.
#pragma once
#include "common/compat.cuh"

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define VA_HALO_UNROLL _Pragma("unroll")
#else
#define VA_HALO_UNROLL _Pragma("GCC unroll 64")
#endif

VA_CUDA_NAMESPACE_BEGIN

constexpr int kHaloMaxThreads = 256;       // fast kernels launch at most this many threads
constexpr int kHaloGenericThreads = 128;   // generic kernels
constexpr int kHaloSlice = 16;             // head dims per thread in the backward's phase B
constexpr unsigned kHaloFullMask = 0xffffffffu;

// Shape of one call (both directions).
struct HaloArgs {
  int64_t B, H, W, Hq, Wq;
  int64_t tiles;  // B · nbH · nbW · heads
  int heads, dk, dv, b, h, win, bq, nbH, nbW, nq, nk;
  float scale;
  float posScale;  // factor of the relative term: scale if scalePosEmbed, else 1
};

// Tiling of the fast kernels (halo.cu: haloPlan). Shared-memory offsets are in floats, multiples
// of 4 (float4 access).
struct HaloPlan {
  int QG;       // queries per group (the last group may be smaller)
  int nGroups;  // ceil(nq / QG)
  int NS;       // threads per query (key splits), a power of two ≤ 8
  int QGp;      // threads / NS: query slots incl. padding slots (zero queries, never written)
  int rowsPerChunk, nChunks;  // window rows per K/V chunk
  int ldK, ldV;  // shared row strides of K / V (and Q / dOut) tiles: DK + 4, DV + 4
  int ldR;       // stride of the per-query relative-logit rows (2·win + 1)
  int ldS;       // stride of the dS / P tiles (backward)
  int offK, offV, offR;              // forward and backward
  int offQ, offG, offSr, offDS, offP;  // backward only
  size_t smem;   // dynamic shared bytes
};

struct HaloTile {
  int64_t n;
  int I, J, m;
};

__device__ __forceinline__ HaloTile haloTile(const HaloArgs& a, int64_t tile) {
  HaloTile t;
  t.m = static_cast<int>(tile % a.heads);
  int64_t r = tile / a.heads;
  t.J = static_cast<int>(r % a.nbW);
  r /= a.nbW;
  t.I = static_cast<int>(r % a.nbH);
  t.n = r / a.nbH;
  return t;
}

// Row index (pixel · heads + head) of query (qy, qx) of the tile in q / out / lse / dQ / dOut.
__device__ __forceinline__ int64_t haloQueryRow(const HaloArgs& a, const HaloTile& t, int qy, int qx) {
  const int64_t yq = static_cast<int64_t>(t.I) * a.bq + qy, xq = static_cast<int64_t>(t.J) * a.bq + qx;
  return ((t.n * a.Hq + yq) * a.Wq + xq) * a.heads + t.m;
}

// Row index in k / v of window key (ky, kx) of the tile, or −1 outside the image.
__device__ __forceinline__ int64_t haloKeyRow(const HaloArgs& a, const HaloTile& t, int ky, int kx) {
  const int64_t y = static_cast<int64_t>(t.I) * a.b - a.h + ky;
  const int64_t x = static_cast<int64_t>(t.J) * a.b - a.h + kx;
  if (y < 0 || y >= a.H || x < 0 || x >= a.W) return -1;
  return ((t.n * a.H + y) * a.W + x) * a.heads + t.m;
}

// ------------------------------------------------------------------------------ fast-path helpers
// exp of a non-positive argument: the fast hardware exp on the GPU (ex2.approx, ~2 ulp there), the
// accurate one in the emulator (glibc's global ::__expf makes vaemu::__expf ambiguous in g++).
__device__ __forceinline__ float haloExp(float x) {
#if VA_IS_EMU
  return expf(x);
#else
  return __expf(x);
#endif
}

// Stage window rows [ky0, ky0 + nKeys / win) of K (and V) into shared tiles; zero outside the image
// and in the padding columns dk ≤ e < DK (dv ≤ e < DV).
template <int D>
__device__ __forceinline__ void haloStageRows(const HaloArgs& a, const HaloTile& t, int ky0, int nKeys,
                                              const float* __restrict__ src, int d, float* dst, int ld) {
  const int nth = static_cast<int>(blockDim.x);
  for (int idx = static_cast<int>(threadIdx.x); idx < nKeys * D; idx += nth) {
    const int jc = idx / D, e = idx % D;  // D is a power of two
    const int ky = jc / a.win, kx = jc - ky * a.win;
    float val = 0.0f;
    if (e < d) {
      const int64_t row = haloKeyRow(a, t, ky0 + ky, kx);
      if (row >= 0) val = __ldg(src + row * d + e);
    }
    dst[jc * ld + e] = val;
  }
}

// Relative logits of one query, entries s, s + NS, … of Rrow[0 .. 2·win) (see the file comment).
// Stages the rows of queries g0 … g0 + nValid − 1 of the tile (query index i = qy·bq + qx) from a
// [*, dim] tensor into dst[nRows][ld] (columns < D), coalesced; zero beyond nValid rows and dim columns.
template <int D>
__device__ __forceinline__ void haloStageQueryRows(const HaloArgs& a, const HaloTile& t,
                                                   const float* __restrict__ src, int dim, int g0,
                                                   int nValid, int nRows, float* dst, int ld) {
  const int nth = static_cast<int>(blockDim.x);
  for (int idx = static_cast<int>(threadIdx.x); idx < nRows * D; idx += nth) {
    const int r = idx / D, e = idx % D;
    float val = 0.0f;
    if (r < nValid && e < dim) {
      const int ii = g0 + r;
      val = __ldg(src + haloQueryRow(a, t, ii / a.bq, ii % a.bq) * dim + e);
    }
    dst[r * ld + e] = val;
  }
}

template <int DK>
__device__ __forceinline__ void haloRelLogits(const HaloArgs& a, const float (&qr)[DK], int qy, int qx,
                                              int s, int NS, const float* __restrict__ relH,
                                              const float* __restrict__ relW, float* Rrow) {
  for (int t = s; t < 2 * a.win; t += NS) {
    const bool isW = t >= a.win;
    const int kk = isW ? t - a.win : t;
    const int row = kk - (isW ? qx : qy) + a.win - 1;
    const float* rp = (isW ? relW : relH) + static_cast<int64_t>(row) * a.dk;
    float acc0 = 0.0f, acc1 = 0.0f;
    VA_HALO_UNROLL
    for (int e = 0; e < DK; e += 2) {
      if (e < a.dk) acc0 += qr[e] * __ldg(rp + e);
      if (e + 1 < a.dk) acc1 += qr[e + 1] * __ldg(rp + e + 1);
    }
    Rrow[t] = a.posScale * (acc0 + acc1);
  }
}

// q·k for a zero-padded row of DK floats in shared memory (four partial sums, fixed order).
template <int DK>
__device__ __forceinline__ float haloDot(const float (&qr)[DK], const float* row) {
  const float4* r4 = reinterpret_cast<const float4*>(row);
  float d0 = 0.0f, d1 = 0.0f, d2 = 0.0f, d3 = 0.0f;
  VA_HALO_UNROLL
  for (int e4 = 0; e4 < DK / 4; ++e4) {
    const float4 kk = r4[e4];
    d0 += qr[4 * e4] * kk.x;
    d1 += qr[4 * e4 + 1] * kk.y;
    d2 += qr[4 * e4 + 2] * kk.z;
    d3 += qr[4 * e4 + 3] * kk.w;
  }
  return (d0 + d1) + (d2 + d3);
}

// a·b for two zero-padded rows of D floats in shared memory.
template <int D>
__device__ __forceinline__ float haloDotShared(const float* a, const float* b) {
  const float4* a4 = reinterpret_cast<const float4*>(a);
  const float4* b4 = reinterpret_cast<const float4*>(b);
  float d0 = 0.0f, d1 = 0.0f, d2 = 0.0f, d3 = 0.0f;
  VA_HALO_UNROLL
  for (int e4 = 0; e4 < D / 4; ++e4) {
    const float4 x = a4[e4], y = b4[e4];
    d0 += x.x * y.x;
    d1 += x.y * y.y;
    d2 += x.z * y.z;
    d3 += x.w * y.w;
  }
  return (d0 + d1) + (d2 + d3);
}

// acc += w · row (D floats in shared memory).
template <int D>
__device__ __forceinline__ void haloAxpy(float (&acc)[D], float w, const float* row) {
  const float4* r4 = reinterpret_cast<const float4*>(row);
  VA_HALO_UNROLL
  for (int e4 = 0; e4 < D / 4; ++e4) {
    const float4 vv = r4[e4];
    acc[4 * e4] += w * vv.x;
    acc[4 * e4 + 1] += w * vv.y;
    acc[4 * e4 + 2] += w * vv.z;
    acc[4 * e4 + 3] += w * vv.w;
  }
}

// Advance the window coordinates of a thread's key by NS positions (row-major over win columns).
__device__ __forceinline__ void haloStepKey(int& ky, int& kx, int NS, int win) {
  kx += NS;
  while (kx >= win) {
    kx -= win;
    ++ky;
  }
}

// ---------------------------------------------------------------------------- fast forward
template <int DK, int DV>
__global__ void __launch_bounds__(kHaloMaxThreads)
    haloForwardKernel(const float* __restrict__ q, const float* __restrict__ k,
                      const float* __restrict__ v, const float* __restrict__ relH,
                      const float* __restrict__ relW, float* __restrict__ out,
                      float* __restrict__ lse, HaloArgs a, HaloPlan pl) {
  VA_DYNAMIC_SHARED(float, smem);
  float* Ks = smem + pl.offK;
  float* Vs = smem + pl.offV;
  float* Rs = smem + pl.offR;
  const int tid = static_cast<int>(threadIdx.x);
  const int NS = pl.NS, qi = tid / NS, s = tid % NS;
  for (int64_t tile = blockIdx.x; tile < a.tiles; tile += gridDim.x) {
    const HaloTile t = haloTile(a, tile);
    for (int g = 0; g < pl.nGroups; ++g) {
      const int g0 = g * pl.QG;
      const int nValid = min(pl.QG, a.nq - g0);
      const bool valid = qi < nValid;
      const int i = valid ? g0 + qi : 0;
      const int qy = i / a.bq, qx = i % a.bq;
      const int64_t qrow = haloQueryRow(a, t, qy, qx);
      __syncthreads();  // the previous group / tile is done with Rs (and Ks, Vs)
      float qr[DK];
      {
        const float* qp = q + qrow * a.dk;
        VA_HALO_UNROLL
        for (int e = 0; e < DK; ++e) qr[e] = (valid && e < a.dk) ? __ldg(qp + e) : 0.0f;
      }
      float* Rq = Rs + qi * pl.ldR;
      haloRelLogits<DK>(a, qr, qy, qx, s, NS, relH, relW, Rq);
      float mrun = -INFINITY, l = 0.0f;
      float o[DV];
      VA_HALO_UNROLL
      for (int e = 0; e < DV; ++e) o[e] = 0.0f;
      for (int c = 0; c < pl.nChunks; ++c) {
        const int ky0 = c * pl.rowsPerChunk;
        const int nKeys = min(pl.rowsPerChunk, a.win - ky0) * a.win;
        if (pl.nChunks > 1 || g == 0) {  // one chunk: the window stays staged across groups
          if (c > 0) __syncthreads();
          haloStageRows<DK>(a, t, ky0, nKeys, k, a.dk, Ks, pl.ldK);
          haloStageRows<DV>(a, t, ky0, nKeys, v, a.dv, Vs, pl.ldV);
        }
        __syncthreads();
        int ky = s / a.win, kx = s % a.win;  // ky is local to the chunk
        for (int jc = s; jc < nKeys; jc += NS) {
          const float sc = a.scale * haloDot<DK>(qr, Ks + jc * pl.ldK) + Rq[ky0 + ky] + Rq[a.win + kx];
          if (sc > mrun) {  // lazy rescale: only when this split's running max grows
            const float corr = haloExp(mrun - sc);
            l *= corr;
            VA_HALO_UNROLL
            for (int e = 0; e < DV; ++e) o[e] *= corr;
            mrun = sc;
          }
          const float p = haloExp(sc - mrun);
          l += p;
          haloAxpy<DV>(o, p, Vs + jc * pl.ldV);
          haloStepKey(ky, kx, NS, a.win);
        }
      }
      // merge the NS splits of each query (adjacent lanes), fixed butterfly order
      for (int off = 1; off < NS; off <<= 1) {
        const float mo = __shfl_xor_sync(kHaloFullMask, mrun, off);
        const float lo = __shfl_xor_sync(kHaloFullMask, l, off);
        const float mn = fmaxf(mrun, mo);
        const float ca = mrun == -INFINITY ? 0.0f : haloExp(mrun - mn);  // a split may hold no key
        const float cb = mo == -INFINITY ? 0.0f : haloExp(mo - mn);
        l = l * ca + lo * cb;
        VA_HALO_UNROLL
        for (int e = 0; e < DV; ++e) {
          const float oo = __shfl_xor_sync(kHaloFullMask, o[e], off);
          o[e] = o[e] * ca + oo * cb;
        }
        mrun = mn;
      }
      if (valid) {
        const float inv = 1.0f / l;
        float* op = out + qrow * a.dv;
        VA_HALO_UNROLL
        for (int e = 0; e < DV; ++e)
          if (e < a.dv && (e & (NS - 1)) == s) op[e] = o[e] * inv;
        if (s == 0) lse[qrow] = mrun + logf(l);
      }
    }
  }
}

// ---------------------------------------------------------------------------- fast backward
// Workspace pieces written here, per tile: dKwin[tile][nk][dk], dVwin[tile][nk][dv] (scale and the
// window's keys included, padding keys too — the gather never reads those) and
// relPart[tile][2][2·win − 1][dk] (H table first).
// Two CTAs per SM (≤ 128 registers, no spills at DK, DV ≤ 32); the 64-wide variants get the
// whole register file of one CTA rather than spilling.
template <int DK, int DV>
__global__ void __launch_bounds__(kHaloMaxThreads, (DK <= 32 && DV <= 32) ? 2 : 1)
    haloBackwardKernel(const float* __restrict__ q, const float* __restrict__ k,
                       const float* __restrict__ v, const float* __restrict__ relH,
                       const float* __restrict__ relW, const float* __restrict__ out,
                       const float* __restrict__ lse, const float* __restrict__ dOut,
                       float* __restrict__ dQ, float* __restrict__ dKwin,
                       float* __restrict__ dVwin, float* __restrict__ relPart, HaloArgs a,
                       HaloPlan pl) {
  constexpr int DM = DK > DV ? DK : DV;
  constexpr int NP = DM / kHaloSlice;  // phase B: 16-dim slices per key
  VA_DYNAMIC_SHARED(float, smem);
  float* Qs = smem + pl.offQ;    // [QGp][ldK] queries of the group (zero padded)
  float* Gs = smem + pl.offG;    // [QGp][ldV] dOut rows of the group
  float* Rs = smem + pl.offR;    // [QGp][ldR] relative logits (as the forward)
  float* Sr = smem + pl.offSr;   // [QGp][ldR] Sh (ky < win) | Sw (win + kx)
  float* Ks = smem + pl.offK;    // [KC][ldK]
  float* Vs = smem + pl.offV;    // [KC][ldV]
  float* dSs = smem + pl.offDS;  // [QGp][ldS] dS of the chunk
  float* Ps = smem + pl.offP;    // [QGp][ldS] P of the chunk
  const int tid = static_cast<int>(threadIdx.x), nth = static_cast<int>(blockDim.x);
  const int NS = pl.NS, qi = tid / NS, s = tid % NS;
  const int win = a.win, nRel = 2 * win - 1;
  for (int64_t tile = blockIdx.x; tile < a.tiles; tile += gridDim.x) {
    const HaloTile t = haloTile(a, tile);
    float* dKt = dKwin + tile * a.nk * a.dk;
    float* dVt = dVwin + tile * a.nk * a.dv;
    float* partT = relPart + tile * 2 * nRel * a.dk;
    for (int g = 0; g < pl.nGroups; ++g) {
      const int g0 = g * pl.QG;
      const int nValid = min(pl.QG, a.nq - g0);
      const bool valid = qi < nValid;
      const int i = valid ? g0 + qi : 0;
      const int qy = i / a.bq, qx = i % a.bq;
      const int64_t qrow = haloQueryRow(a, t, qy, qx);
      __syncthreads();  // the previous group / tile is done with every shared tile
      // ---- stage the group's q and dOut rows (coalesced), clear Sh / Sw
      haloStageQueryRows<DK>(a, t, q, a.dk, g0, nValid, pl.QGp, Qs, pl.ldK);
      haloStageQueryRows<DV>(a, t, dOut, a.dv, g0, nValid, pl.QGp, Gs, pl.ldV);
      for (int idx = tid; idx < pl.QGp * pl.ldR; idx += nth) Sr[idx] = 0.0f;
      __syncthreads();
      float* Rq = Rs + qi * pl.ldR;
      float Di = 0.0f, lsei = 0.0f;
      {
        float qr[DK];
        VA_HALO_UNROLL
        for (int e = 0; e < DK; ++e) qr[e] = Qs[qi * pl.ldK + e];
        haloRelLogits<DK>(a, qr, qy, qx, s, NS, relH, relW, Rq);
        if (valid) {
          const float* op = out + qrow * a.dv;
          const float* gp = Gs + qi * pl.ldV;
          float d0 = 0.0f, d1 = 0.0f;
          for (int e = 0; e + 1 < a.dv; e += 2) {
            d0 += gp[e] * __ldg(op + e);
            d1 += gp[e + 1] * __ldg(op + e + 1);
          }
          if (a.dv & 1) d0 += gp[a.dv - 1] * __ldg(op + a.dv - 1);
          Di = d0 + d1;
          lsei = __ldg(lse + qrow);
        }
      }
      float dq[DK];
      VA_HALO_UNROLL
      for (int e = 0; e < DK; ++e) dq[e] = 0.0f;
      for (int c = 0; c < pl.nChunks; ++c) {
        const int ky0 = c * pl.rowsPerChunk;
        const int rowsC = min(pl.rowsPerChunk, win - ky0);
        const int nKeys = rowsC * win;
        if (pl.nChunks > 1 || g == 0) {
          if (c > 0) __syncthreads();
          haloStageRows<DK>(a, t, ky0, nKeys, k, a.dk, Ks, pl.ldK);
          haloStageRows<DV>(a, t, ky0, nKeys, v, a.dv, Vs, pl.ldV);
        }
        __syncthreads();
        // ---- phase A: thread = (query, split): dS, P → shared; dQ (content part) in registers
        {
          float qr[DK];
          VA_HALO_UNROLL
          for (int e = 0; e < DK; ++e) qr[e] = Qs[qi * pl.ldK + e];
          const float* gq = Gs + qi * pl.ldV;
          float* dSrow = dSs + qi * pl.ldS;
          float* Prow = Ps + qi * pl.ldS;
          int ky = s / win, kx = s % win;
          for (int jc = s; jc < nKeys; jc += NS) {
            const float* kr = Ks + jc * pl.ldK;
            const float sc = a.scale * haloDot<DK>(qr, kr) + Rq[ky0 + ky] + Rq[win + kx];
            const float p = haloExp(sc - lsei);
            const float dp = haloDotShared<DV>(gq, Vs + jc * pl.ldV);
            const float ds = p * (dp - Di);
            haloAxpy<DK>(dq, ds, kr);
            dSrow[jc] = ds;
            Prow[jc] = p;
            haloStepKey(ky, kx, NS, win);
          }
        }
        __syncthreads();
        // ---- phase B: thread = (key, 16-dim slice): dK_win = scale·dSᵀq, dV_win = Pᵀ dOut
        for (int item = tid; item < nKeys * NP; item += nth) {
          const int jc = item / NP, u = item % NP;
          const int e0 = u * kHaloSlice;
          float ak[kHaloSlice], av[kHaloSlice];
          VA_HALO_UNROLL
          for (int e = 0; e < kHaloSlice; ++e) ak[e] = av[e] = 0.0f;
          for (int r = 0; r < nValid; ++r) {
            const float ds = dSs[r * pl.ldS + jc], p = Ps[r * pl.ldS + jc];
            if (e0 < DK) haloAxpy<kHaloSlice>(ak, ds, Qs + r * pl.ldK + e0);
            if (e0 < DV) haloAxpy<kHaloSlice>(av, p, Gs + r * pl.ldV + e0);
          }
          const int j = ky0 * win + jc;
          VA_HALO_UNROLL
          for (int e = 0; e < kHaloSlice; ++e) {
            if (e0 + e < a.dk) {
              float* dst = dKt + static_cast<int64_t>(j) * a.dk + e0 + e;
              *dst = (g == 0 ? 0.0f : *dst) + a.scale * ak[e];
            }
            if (e0 + e < a.dv) {
              float* dst = dVt + static_cast<int64_t>(j) * a.dv + e0 + e;
              *dst = (g == 0 ? 0.0f : *dst) + av[e];
            }
          }
        }
        // ---- per-axis row sums of dR: Sh (complete per chunk), Sw (accumulates over chunks)
        for (int item = tid; item < pl.QGp * (rowsC + win); item += nth) {
          const int r = item / (rowsC + win), w = item % (rowsC + win);
          const float* dSrow = dSs + r * pl.ldS;
          float acc = 0.0f;
          if (w < rowsC) {
            for (int kx = 0; kx < win; ++kx) acc += dSrow[w * win + kx];
            Sr[r * pl.ldR + ky0 + w] = a.posScale * acc;
          } else {
            const int kx = w - rowsC;
            for (int ky = 0; ky < rowsC; ++ky) acc += dSrow[ky * win + kx];
            Sr[r * pl.ldR + win + kx] += a.posScale * acc;
          }
        }
      }
      __syncthreads();  // Sh / Sw complete; phase B done with Qs
      // ---- dQ: merge the splits (sums are commutative: every lane gets the same bits)
      for (int off = 1; off < NS; off <<= 1) {
        VA_HALO_UNROLL
        for (int e = 0; e < DK; ++e) dq[e] += __shfl_xor_sync(kHaloFullMask, dq[e], off);
      }
      if (valid) {
        const float* Sq = Sr + qi * pl.ldR;
        float* dqp = dQ + qrow * a.dk;
        VA_HALO_UNROLL
        for (int e = 0; e < DK; ++e) {
          if (e < a.dk && (e & (NS - 1)) == s) {
            float val = a.scale * dq[e];
            const float* hp = relH + static_cast<int64_t>(win - 1 - qy) * a.dk + e;
            const float* wp = relW + static_cast<int64_t>(win - 1 - qx) * a.dk + e;
            for (int kk = 0; kk < win; ++kk) {
              val += Sq[kk] * __ldg(hp + static_cast<int64_t>(kk) * a.dk);
              val += Sq[win + kk] * __ldg(wp + static_cast<int64_t>(kk) * a.dk);
            }
            dqp[e] = val;
          }
        }
      }
      // ---- dRel partial of the group: thread = (table, row r, dim e)
      for (int64_t item = tid; item < int64_t(2) * nRel * a.dk; item += nth) {
        const int e = static_cast<int>(item % a.dk), rr = static_cast<int>(item / a.dk);
        const int tab = rr / nRel, r = rr % nRel;
        float acc = 0.0f;
        for (int kk = 0; kk < win; ++kk) {
          const int qc = kk + win - 1 - r;  // the query row (H) / column (W) that maps kk to r
          if (qc < 0 || qc >= a.bq) continue;
          for (int o2 = 0; o2 < a.bq; ++o2) {
            const int ii = (tab == 0 ? qc * a.bq + o2 : o2 * a.bq + qc) - g0;
            if (ii < 0 || ii >= nValid) continue;
            acc += Sr[ii * pl.ldR + (tab == 0 ? kk : win + kk)] * Qs[ii * pl.ldK + e];
          }
        }
        float* dst = partT + item;
        *dst = (g == 0 ? 0.0f : *dst) + acc;
      }
    }
  }
}

// ---------------------------------------------------------------------------- generic path
// One thread per query (forward, backward phase 1) or per window key (backward phase 2), every
// operand read from global memory; no shared memory and no size limit. Used when dk or dv > 64 or
// the fast tiles do not fit in shared memory.

// Logit S[i, (ky,kx)] with kp = the key row (nullptr: padding, q·k = 0).
__device__ __forceinline__ float haloLogitGlobal(const HaloArgs& a, const float* qp, const float* kp,
                                                 const float* rh, const float* rw) {
  float qk = 0.0f, r = 0.0f;
  for (int e = 0; e < a.dk; ++e) {
    const float qe = __ldg(qp + e);
    if (kp) qk += qe * __ldg(kp + e);
    r += qe * (__ldg(rh + e) + __ldg(rw + e));
  }
  return a.scale * qk + a.posScale * r;
}

template <int DUMMY>
__global__ void __launch_bounds__(kHaloGenericThreads)
    haloForwardGenericKernel(const float* __restrict__ q, const float* __restrict__ k,
                             const float* __restrict__ v, const float* __restrict__ relH,
                             const float* __restrict__ relW, float* __restrict__ out,
                             float* __restrict__ lse, HaloArgs a) {
  const int win = a.win;
  for (int64_t tile = blockIdx.x; tile < a.tiles; tile += gridDim.x) {
    const HaloTile t = haloTile(a, tile);
    for (int i = static_cast<int>(threadIdx.x); i < a.nq; i += blockDim.x) {
      const int qy = i / a.bq, qx = i % a.bq;
      const int64_t qrow = haloQueryRow(a, t, qy, qx);
      const float* qp = q + qrow * a.dk;
      // pass 1: log-sum-exp (online)
      float mx = -INFINITY, l = 0.0f;
      for (int ky = 0; ky < win; ++ky) {
        for (int kx = 0; kx < win; ++kx) {
          const int64_t kr = haloKeyRow(a, t, ky, kx);
          const float sc = haloLogitGlobal(a, qp, kr >= 0 ? k + kr * a.dk : nullptr,
                                           relH + static_cast<int64_t>(ky - qy + win - 1) * a.dk,
                                           relW + static_cast<int64_t>(kx - qx + win - 1) * a.dk);
          if (sc > mx) {
            l *= expf(mx - sc);
            mx = sc;
          }
          l += expf(sc - mx);
        }
      }
      const float ls = mx + logf(l);
      lse[qrow] = ls;
      // pass 2: out = Σ exp(S − lse)·v, accumulated in place
      float* op = out + qrow * a.dv;
      for (int e = 0; e < a.dv; ++e) op[e] = 0.0f;
      for (int ky = 0; ky < win; ++ky) {
        for (int kx = 0; kx < win; ++kx) {
          const int64_t kr = haloKeyRow(a, t, ky, kx);
          if (kr < 0) continue;  // zero value
          const float sc = haloLogitGlobal(a, qp, k + kr * a.dk,
                                           relH + static_cast<int64_t>(ky - qy + win - 1) * a.dk,
                                           relW + static_cast<int64_t>(kx - qx + win - 1) * a.dk);
          const float p = expf(sc - ls);
          const float* vp = v + kr * a.dv;
          for (int e = 0; e < a.dv; ++e) op[e] += p * __ldg(vp + e);
        }
      }
    }
  }
}

// Backward, three phases per tile separated by barriers (global-memory exchange inside the CTA):
//   1. thread = query: D_i, dQ_i (accumulated in place), Sh / Sw rows → Sws[tile][nq][2·win]
//   2. thread = window key: dK_win, dV_win (accumulated in place, queries ascending)
//   3. thread = (table, r, e): the tile's dRel partial
template <int DUMMY>
__global__ void __launch_bounds__(kHaloGenericThreads)
    haloBackwardGenericKernel(const float* __restrict__ q, const float* __restrict__ k,
                              const float* __restrict__ v, const float* __restrict__ relH,
                              const float* __restrict__ relW, const float* __restrict__ out,
                              const float* __restrict__ lse, const float* __restrict__ dOut,
                              float* __restrict__ dQ, float* __restrict__ dKwin,
                              float* __restrict__ dVwin, float* __restrict__ relPart,
                              float* __restrict__ Dws, float* __restrict__ Sws, HaloArgs a) {
  const int win = a.win, nRel = 2 * win - 1;
  const int tid = static_cast<int>(threadIdx.x), nth = static_cast<int>(blockDim.x);
  for (int64_t tile = blockIdx.x; tile < a.tiles; tile += gridDim.x) {
    const HaloTile t = haloTile(a, tile);
    float* Dt = Dws + tile * a.nq;
    float* St = Sws + tile * a.nq * 2 * win;
    float* dKt = dKwin + tile * a.nk * a.dk;
    float* dVt = dVwin + tile * a.nk * a.dv;
    float* partT = relPart + tile * 2 * nRel * a.dk;
    // ---- phase 1
    for (int i = tid; i < a.nq; i += nth) {
      const int qy = i / a.bq, qx = i % a.bq;
      const int64_t qrow = haloQueryRow(a, t, qy, qx);
      const float* qp = q + qrow * a.dk;
      const float* gp = dOut + qrow * a.dv;
      float D = 0.0f;
      for (int e = 0; e < a.dv; ++e) D += __ldg(gp + e) * __ldg(out + qrow * a.dv + e);
      Dt[i] = D;
      const float ls = __ldg(lse + qrow);
      float* dqp = dQ + qrow * a.dk;
      for (int e = 0; e < a.dk; ++e) dqp[e] = 0.0f;
      float* Si = St + static_cast<int64_t>(i) * 2 * win;
      for (int w = 0; w < 2 * win; ++w) Si[w] = 0.0f;
      for (int ky = 0; ky < win; ++ky) {
        for (int kx = 0; kx < win; ++kx) {
          const int64_t kr = haloKeyRow(a, t, ky, kx);
          const float* kp = kr >= 0 ? k + kr * a.dk : nullptr;
          const float* rh = relH + static_cast<int64_t>(ky - qy + win - 1) * a.dk;
          const float* rw = relW + static_cast<int64_t>(kx - qx + win - 1) * a.dk;
          const float p = expf(haloLogitGlobal(a, qp, kp, rh, rw) - ls);
          float dp = 0.0f;
          if (kr >= 0)
            for (int e = 0; e < a.dv; ++e) dp += __ldg(gp + e) * __ldg(v + kr * a.dv + e);
          const float ds = p * (dp - D);
          const float dr = a.posScale * ds, dqk = a.scale * ds;
          for (int e = 0; e < a.dk; ++e)
            dqp[e] += (kp ? dqk * __ldg(kp + e) : 0.0f) + dr * (__ldg(rw + e) + __ldg(rh + e));
          Si[ky] += dr;
          Si[win + kx] += dr;
        }
      }
    }
    __syncthreads();
    // ---- phase 2
    for (int j = tid; j < a.nk; j += nth) {
      const int ky = j / win, kx = j % win;
      const int64_t kr = haloKeyRow(a, t, ky, kx);
      float* dkp = dKt + static_cast<int64_t>(j) * a.dk;
      float* dvp = dVt + static_cast<int64_t>(j) * a.dv;
      for (int e = 0; e < a.dk; ++e) dkp[e] = 0.0f;
      for (int e = 0; e < a.dv; ++e) dvp[e] = 0.0f;
      if (kr < 0) continue;  // never gathered
      const float* kp = k + kr * a.dk;
      const float* vp = v + kr * a.dv;
      for (int i = 0; i < a.nq; ++i) {
        const int qy = i / a.bq, qx = i % a.bq;
        const int64_t qrow = haloQueryRow(a, t, qy, qx);
        const float* qp = q + qrow * a.dk;
        const float* gp = dOut + qrow * a.dv;
        const float p = expf(haloLogitGlobal(a, qp, kp,
                                             relH + static_cast<int64_t>(ky - qy + win - 1) * a.dk,
                                             relW + static_cast<int64_t>(kx - qx + win - 1) * a.dk) -
                             __ldg(lse + qrow));
        float dp = 0.0f;
        for (int e = 0; e < a.dv; ++e) dp += __ldg(gp + e) * __ldg(vp + e);
        const float dqk = a.scale * p * (dp - Dt[i]);
        for (int e = 0; e < a.dk; ++e) dkp[e] += dqk * __ldg(qp + e);
        for (int e = 0; e < a.dv; ++e) dvp[e] += p * __ldg(gp + e);
      }
    }
    // ---- phase 3
    for (int64_t item = tid; item < int64_t(2) * nRel * a.dk; item += nth) {
      const int e = static_cast<int>(item % a.dk), rr = static_cast<int>(item / a.dk);
      const int tab = rr / nRel, r = rr % nRel;
      float acc = 0.0f;
      for (int kk = 0; kk < win; ++kk) {
        const int qc = kk + win - 1 - r;
        if (qc < 0 || qc >= a.bq) continue;
        for (int o2 = 0; o2 < a.bq; ++o2) {
          const int ii = tab == 0 ? qc * a.bq + o2 : o2 * a.bq + qc;
          const int qy = ii / a.bq, qx = ii % a.bq;
          acc += St[static_cast<int64_t>(ii) * 2 * win + (tab == 0 ? kk : win + kk)] *
                 __ldg(q + haloQueryRow(a, t, qy, qx) * a.dk + e);
        }
      }
      partT[item] = acc;
    }
    __syncthreads();  // (tiles are independent; kept for clarity of the phase structure)
  }
}

// ---------------------------------------------------------------------------- gather / reduce
// dK (then dV) element (n, y, x, m, e) = Σ over windows (I ascending, then J) containing (y, x) of
// the window gradient at that pixel. Every pixel lies in its own block's window, so all are written.
__device__ __forceinline__ int64_t haloFloorDiv(int64_t x, int64_t d) {
  return x >= 0 ? x / d : -((-x + d - 1) / d);
}

template <int DUMMY>
__global__ void haloGatherKernel(const float* __restrict__ dKwin, const float* __restrict__ dVwin,
                                 float* __restrict__ dK, float* __restrict__ dV, HaloArgs a) {
  const int64_t nPix = a.B * a.H * a.W * a.heads;
  const int64_t nK = nPix * a.dk, total = nK + nPix * a.dv;
  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const bool isK = idx < nK;
    const int64_t u = isK ? idx : idx - nK;
    const int d = isK ? a.dk : a.dv;
    const float* src = isK ? dKwin : dVwin;
    const int e = static_cast<int>(u % d);
    int64_t r = u / d;
    const int m = static_cast<int>(r % a.heads);
    r /= a.heads;
    const int64_t x = r % a.W;
    r /= a.W;
    const int64_t y = r % a.H;
    const int64_t n = r / a.H;
    // window I covers rows [I·b − h, I·b − h + win)
    int64_t iLo = haloFloorDiv(y + a.h - a.win, a.b) + 1, iHi = (y + a.h) / a.b;
    int64_t jLo = haloFloorDiv(x + a.h - a.win, a.b) + 1, jHi = (x + a.h) / a.b;
    if (iLo < 0) iLo = 0;
    if (jLo < 0) jLo = 0;
    if (iHi > a.nbH - 1) iHi = a.nbH - 1;
    if (jHi > a.nbW - 1) jHi = a.nbW - 1;
    float acc = 0.0f;
    for (int64_t I = iLo; I <= iHi; ++I) {
      for (int64_t J = jLo; J <= jHi; ++J) {
        const int64_t tile = ((n * a.nbH + I) * a.nbW + J) * a.heads + m;
        const int64_t j = (y - (I * a.b - a.h)) * a.win + (x - (J * a.b - a.h));
        acc += __ldg(src + (tile * a.nk + j) * d + e);
      }
    }
    (isK ? dK : dV)[u] = acc;
  }
}

// Column sums of parts[P][C] in a fixed order. Block = 256 threads = 32 columns × 8 lanes of rows;
// blockIdx.y = slice: rows [slice·perSlice, min(P, (slice + 1)·perSlice)). Lane y sums rows
// y, y + 8, … of the slice ascending; the 8 lane sums are added in order. Column c of slice sl goes
// to (c < half ? dstA + c : dstB + c − half) + sl·sliceStride.
constexpr int kHaloReduceThreads = 256;

template <int DUMMY>
__global__ void __launch_bounds__(kHaloReduceThreads)
    haloRelReduceKernel(const float* __restrict__ parts, int64_t P, int64_t C, int64_t perSlice,
                        float* __restrict__ dstA, float* __restrict__ dstB, int64_t half,
                        int64_t sliceStride) {
  __shared__ float red[8][33];
  const int x = static_cast<int>(threadIdx.x) & 31, y = static_cast<int>(threadIdx.x) >> 5;
  const int64_t c = static_cast<int64_t>(blockIdx.x) * 32 + x;
  const int64_t sl = blockIdx.y;
  const int64_t p0 = sl * perSlice, p1 = p0 + perSlice < P ? p0 + perSlice : P;
  float acc = 0.0f;
  if (c < C)
    for (int64_t p = p0 + y; p < p1; p += 8) acc += __ldg(parts + p * C + c);
  red[y][x] = acc;
  __syncthreads();
  if (y == 0 && c < C) {
    float tot = 0.0f;
    for (int w = 0; w < 8; ++w) tot += red[w][x];
    float* dst = (c < half ? dstA + c : dstB + (c - half)) + sl * sliceStride;
    *dst = tot;
  }
}

VA_CUDA_NAMESPACE_END
