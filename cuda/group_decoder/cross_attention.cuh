// visattn — ML-Decoder cross-attention (CrossAttentionParams / CrossAttentionBackwardParams in
// visattn/params.h; spec §1.2–§1.3). Layouts: q[Bq,Lq,M,d] (Bq = 1: one query set shared by every
// image, read through b·(Bq == B), never broadcast in memory), k[B,Lk,M,d], v[B,Lk,M,dv],
// out[B,Lq,M,dv], lse[B,M,Lq].
//
// Kernels
//   caForwardKernel<DP>     flash forward: one CTA per (image b, head m, tile of BQ queries); key/value
//                           tiles of kBK = 32 rows stream through shared memory, online softmax.
//   caBackwardDqKernel<DP>  per (b, m, query tile): D_i = dOut_i·out_i (→ workspace), then over key
//                           tiles: P = exp(S − lse), dP̃ = dOut·vᵀ, dS, dQ += dS·k (registers).
//   caBackwardDkvKernel<DP> per (b, m, tile of BKV keys): over query tiles of kBQ2 = 32 rows:
//                           dV += P̃ᵀ·dOut, dK += dSᵀ·q (registers). Reads D from the workspace.
//   caForwardGenericKernel, caBackwardDqGenericKernel, caBackwardDkvGenericKernel
//                           any d, dv: one thread per query (per key), global memory only.
//   caBatchSumKernel        Bq = 1: dQ = Σ_b (per-image dQ partials), b ascending.
// DP ∈ {32, 64, 96, 128} is the padded head width: max(d, dv) ≤ DP, the pads are exact zeros in
// shared memory. No floating-point atomics anywhere: every sum has an order fixed by the shape, so
// the results are bitwise reproducible run to run.
//
// Thread layout of the fast kernels (T = 16·TY threads, TY ∈ {8, 16}, tid = ty·16 + tx):
//   * the "row" side of a tile has 4·TY rows: thread (ty, tx) owns rows 4ty … 4ty + 3;
//   * score micro-tile: those 4 rows × columns tx, tx + 16 (2 columns: the other side has 32 rows);
//   * accumulators (out / dQ / dK / dV): the 4 rows × head dims tx + 16c, c < DP/16.
//   A row's 16 owners are 16 adjacent lanes of one warp: row max / sum are xor-shuffles 1, 2, 4, 8
//   (every lane ends with the same bits).
// Shared tiles are row-major with stride ld = DP + 4 (ld/4 odd: the 8 rows read by a quarter-warp's
// float4 loads fall into distinct banks). The probability / dS tiles are stored transposed
// ([column][row], stride rows + 4) so the accumulation reads one float4 (4 rows) per column.
// Dropout: the keep flags of the (row, column) tile are drawn cooperatively into a byte tile, four
// consecutive keys of one query per thread (≤ 2 Philox evaluations), then read by the score owners.
// Each flag equals va::philox::dropoutKeep(((b·M + m)·Lq + i)·Lk + j, seed, 0, p).
//
// Performance intent (nothing here has been timed: no GPU on the development machine). Target:
// d = dv = 96, Lq = K ≤ 200, Lk = T = 49 … 400+, M = 8. FP32 SIMT; per key tile the forward does
// 2·BQ·32·(d + dv) FLOPs on ≈ (BQ + 64)·(d + 4) shared floats. Shared bytes at 64-row tiles
// (DP = 96 / 128): forward 61 / 77 KB, dQ kernel 86 / 110 KB, dKV kernel 94 / 118 KB (opt-in).
// Registers (ptxas, sm_90): DP ≤ 96 is bounded to 128 (__launch_bounds__(256, 2): two CTAs per SM
// on H100, shared memory permitting; no spills on sm_90, 28 bytes in the sm_80 dQ kernel at DP = 96);
// DP = 128 takes 128–164 (one CTA per SM).
#pragma once
#include "common/compat.cuh"

#include <cmath>
#include <cstdint>

#include "visattn/philox.h"

#if defined(__CUDACC__)
#define VA_CA_UNROLL _Pragma("unroll")
#else
#define VA_CA_UNROLL _Pragma("GCC unroll 32")
#endif

VA_CUDA_NAMESPACE_BEGIN

constexpr int kCaMaxThreads = 256;      // fast kernels: 128 or 256 threads
constexpr int kCaGenericThreads = 128;  // generic kernels
constexpr int kCaBK = 32;               // keys per tile (forward, dQ kernel)
constexpr int kCaBQ2 = 32;              // queries per tile (dKV kernel)
constexpr int kCaFastMaxDim = 128;
constexpr unsigned kCaFullMask = 0xffffffffu;

// Shape of one call (both directions).
struct CaArgs {
  int64_t B, Bq, Lq, Lk;
  int heads, d, dv;
  float scale;
  float dropout;    // probability of dropping
  float keepScale;  // 1 / (1 − dropout)
  bool useDropout;  // dropout > 0
  uint64_t seed;
  int64_t tiles;  // work items of the kernel being launched (grid-stride loop)
  int nTiles;     // tiles of the streamed side per work item's (b, m)
};

// Shared-memory layout of a fast kernel (offsets in floats; the keep-flag bytes come last).
struct CaPlan {
  int TY;      // blockDim.x / 16
  int rows;    // 4·TY: rows of the owned side (queries, or keys for the dKV kernel)
  int ld;      // DP + 4
  int ldT;     // stride of the transposed probability / dS tiles (rows + 4 or kBQ2 …)
  int ldM;     // byte stride of the keep-flag tile
  int offA, offB, offC, offD, offP, offS, offL, offM;
  size_t smem;
};

// ------------------------------------------------------------------------------------ helpers
// Image index of the query rows of image b.
__device__ __forceinline__ int64_t caQueryBatch(const CaArgs& a, int64_t b) { return a.Bq == 1 ? 0 : b; }

// A work index split as ((b·M + m)·n + t): every kernel walks (image, head, tile or row) this way.
struct CaItem {
  int64_t t;   // tile (fast kernels) or row (generic kernels) within (b, m)
  int64_t b;   // image
  int64_t qb;  // image of its query rows (caQueryBatch)
  int m;       // head
};
__device__ __forceinline__ CaItem caItem(const CaArgs& a, int64_t index, int64_t n) {
  CaItem it;
  it.t = index % n;
  const int64_t bm = index / n;
  it.m = static_cast<int>(bm % a.heads);
  it.b = bm / a.heads;
  it.qb = caQueryBatch(a, it.b);
  return it;
}

// acc[r][c] = 0 (register accumulators of the fast kernels).
template <int R, int C>
__device__ __forceinline__ void caZero(float (&acc)[R][C]) {
  VA_CA_UNROLL
  for (int r = 0; r < R; ++r)
    VA_CA_UNROLL
    for (int c = 0; c < C; ++c) acc[r][c] = 0.0f;
}

// Stage rows [r0, r0 + nRows) of a [*, L, M, dim] tensor (image `img`, head m) into dst[nRows][ld],
// zero outside [0, L) and in the padding columns dim ≤ e < DP.
template <int DP>
__device__ __forceinline__ void caStageRows(float* dst, int ld, const float* __restrict__ src,
                                            int64_t img, int64_t L, int heads, int m, int dim,
                                            int64_t r0, int nRows) {
  const int nth = static_cast<int>(blockDim.x);
  for (int idx = static_cast<int>(threadIdx.x); idx < nRows * DP; idx += nth) {
    const int r = idx / DP, e = idx % DP;
    const int64_t row = r0 + r;
    float val = 0.0f;
    if (e < dim && row < L) val = __ldg(src + ((img * L + row) * heads + m) * dim + e);
    dst[r * ld + e] = val;
  }
}

// r.v[lane] without a dynamically indexed local array (which would live in local memory).
__device__ __forceinline__ uint32_t caLane(const va::philox::U4& r, uint64_t lane) {
  const uint32_t lo = (lane & 1) ? r.v[1] : r.v[0];
  const uint32_t hi = (lane & 1) ? r.v[3] : r.v[2];
  return (lane & 2) ? hi : lo;
}

// Keep flags of the dropout mask for the pairs (query i0 + qi, key j0 + kj), qi < nQ, kj < nK,
// written to flags[qi·qStride + kj·kStride]. Work item = one query × 4 consecutive keys: their
// mask indices are consecutive, so at most two Philox evaluations per item. Flags of pairs outside
// the problem are 0.
__device__ __forceinline__ void caDrawKeep(const CaArgs& a, int64_t b, int m, int64_t i0, int nQ,
                                           int64_t j0, int nK, unsigned char* flags, int qStride,
                                           int kStride) {
  const int nth = static_cast<int>(blockDim.x);
  const int nK4 = nK / 4;  // nK is a multiple of 4
  for (int idx = static_cast<int>(threadIdx.x); idx < nQ * nK4; idx += nth) {
    const int qi = idx / nK4, kj0 = (idx % nK4) * 4;
    const int64_t i = i0 + qi;
    const int64_t base = ((b * a.heads + m) * a.Lq + i) * a.Lk + j0 + kj0;  // index of key j0 + kj0
    uint64_t grp = static_cast<uint64_t>(base) >> 2;
    va::philox::U4 r = va::philox::philox4x32_10(grp, 0, a.seed);
    VA_CA_UNROLL
    for (int t = 0; t < 4; ++t) {
      const uint64_t index = static_cast<uint64_t>(base + t);
      if ((index >> 2) != grp) {  // crossed into the next group of four
        grp = index >> 2;
        r = va::philox::philox4x32_10(grp, 0, a.seed);
      }
      const bool inside = i < a.Lq && j0 + kj0 + t < a.Lk;
      const bool keep = inside && va::philox::uniform24(caLane(r, index & 3)) >= a.dropout;
      flags[qi * qStride + (kj0 + t) * kStride] = keep ? 1 : 0;
    }
  }
}

// s[r][c] = Σ_e A[row0 + r][e]·Bm[col0 + 16c][e] over e < DP (ascending e, one accumulator).
template <int DP, int NC>
__device__ __forceinline__ void caDotTile(const float* A, const float* Bm, int ld, int row0, int col0,
                                          float (&s)[4][NC]) {
  caZero(s);
  VA_CA_UNROLL
  for (int e = 0; e < DP; e += 4) {
    float4 av[4], bv[NC];
    VA_CA_UNROLL
    for (int r = 0; r < 4; ++r) av[r] = *reinterpret_cast<const float4*>(A + (row0 + r) * ld + e);
    VA_CA_UNROLL
    for (int c = 0; c < NC; ++c) bv[c] = *reinterpret_cast<const float4*>(Bm + (col0 + 16 * c) * ld + e);
    VA_CA_UNROLL
    for (int r = 0; r < 4; ++r)
      VA_CA_UNROLL
      for (int c = 0; c < NC; ++c) {
        float t = s[r][c];
        t += av[r].x * bv[c].x;
        t += av[r].y * bv[c].y;
        t += av[r].z * bv[c].z;
        t += av[r].w * bv[c].w;
        s[r][c] = t;
      }
  }
}

// acc[r][c] += Σ_{j < n} T[j][row0 + r]·X[j][col0 + 16c] (T transposed weights, X row-major rows).
template <int DP>
__device__ __forceinline__ void caAccumTile(const float* T, int ldT, const float* X, int ld, int n,
                                            int row0, int col0, float (&acc)[4][DP / 16]) {
  for (int j = 0; j < n; ++j) {
    const float4 w = *reinterpret_cast<const float4*>(T + j * ldT + row0);
    const float* xr = X + j * ld + col0;
    VA_CA_UNROLL
    for (int c = 0; c < DP / 16; ++c) {
      const float x = xr[16 * c];
      acc[0][c] += w.x * x;
      acc[1][c] += w.y * x;
      acc[2][c] += w.z * x;
      acc[3][c] += w.w * x;
    }
  }
}

__device__ __forceinline__ float caRowMax16(float v) {
  VA_CA_UNROLL
  for (int o = 1; o < 16; o <<= 1) v = fmaxf(v, __shfl_xor_sync(kCaFullMask, v, o));
  return v;
}
__device__ __forceinline__ float caRowSum16(float v) {
  VA_CA_UNROLL
  for (int o = 1; o < 16; o <<= 1) v += __shfl_xor_sync(kCaFullMask, v, o);
  return v;
}

// ------------------------------------------------------------------------------ fast forward
// Shared: Qs [BQ][ld] (offA), Ks [kBK][ld] (offB), Vs [kBK][ld] (offC), Pt [kBK][ldT] (offP, P̃
// transposed, ldT = BQ + 4), keep flags [BQ][ldM] bytes (offM). Work item = ((b·M + m)·nQT + qt).
template <int DP>
__global__ void __launch_bounds__(kCaMaxThreads, DP <= 96 ? 2 : 1)
    caForwardKernel(const float* __restrict__ q, const float* __restrict__ k,
                    const float* __restrict__ v, float* __restrict__ out, float* __restrict__ lse,
                    CaArgs a, CaPlan pl) {
  constexpr int NO = DP / 16;
  constexpr int NC = kCaBK / 16;
  VA_DYNAMIC_SHARED(float, smem);
  float* Qs = smem + pl.offA;
  float* Ks = smem + pl.offB;
  float* Vs = smem + pl.offC;
  float* Pt = smem + pl.offP;
  unsigned char* Mk = reinterpret_cast<unsigned char*>(smem + pl.offM);
  const int tid = static_cast<int>(threadIdx.x), tx = tid & 15, ty = tid >> 4;
  const int row0 = 4 * ty;
  const int nKT = static_cast<int>((a.Lk + kCaBK - 1) / kCaBK);
  for (int64_t item = blockIdx.x; item < a.tiles; item += gridDim.x) {
    const CaItem it = caItem(a, item, a.nTiles);
    const int m = it.m;
    const int64_t b = it.b;
    const int64_t i0 = it.t * pl.rows;
    __syncthreads();  // the previous item is done with every tile
    caStageRows<DP>(Qs, pl.ld, q, it.qb, a.Lq, a.heads, m, a.d, i0, pl.rows);
    float o[4][NO], mrow[4], l[4];
    caZero(o);
    VA_CA_UNROLL
    for (int r = 0; r < 4; ++r) {
      mrow[r] = -INFINITY;
      l[r] = 0.0f;
    }
    for (int kt = 0; kt < nKT; ++kt) {
      const int64_t j0 = static_cast<int64_t>(kt) * kCaBK;
      const int nK = static_cast<int>(a.Lk - j0 < kCaBK ? a.Lk - j0 : kCaBK);
      if (kt > 0) __syncthreads();  // the previous key tile's P̃·V is done
      caStageRows<DP>(Ks, pl.ld, k, b, a.Lk, a.heads, m, a.d, j0, kCaBK);
      caStageRows<DP>(Vs, pl.ld, v, b, a.Lk, a.heads, m, a.dv, j0, kCaBK);
      if (a.useDropout) caDrawKeep(a, b, m, i0, pl.rows, j0, kCaBK, Mk, pl.ldM, 1);
      __syncthreads();
      float s[4][NC];
      caDotTile<DP, NC>(Qs, Ks, pl.ld, row0, tx, s);
      float pd[4][NC];
      VA_CA_UNROLL
      for (int r = 0; r < 4; ++r) {
        float tmax = -INFINITY;
        VA_CA_UNROLL
        for (int c = 0; c < NC; ++c) {
          s[r][c] = tx + 16 * c < nK ? a.scale * s[r][c] : -INFINITY;
          tmax = fmaxf(tmax, s[r][c]);
        }
        tmax = caRowMax16(tmax);
        const float mnew = fmaxf(mrow[r], tmax);  // finite: every key tile has a valid key
        const float corr = expf(mrow[r] - mnew);  // 0 on the first tile
        float rs = 0.0f;
        VA_CA_UNROLL
        for (int c = 0; c < NC; ++c) {
          const float p = expf(s[r][c] - mnew);
          rs += p;
          pd[r][c] = p;
          if (a.useDropout) pd[r][c] = Mk[(row0 + r) * pl.ldM + tx + 16 * c] ? p * a.keepScale : 0.0f;
        }
        l[r] = l[r] * corr + rs;  // per-thread partial row sum (undropped P)
        VA_CA_UNROLL
        for (int c = 0; c < NO; ++c) o[r][c] *= corr;
        mrow[r] = mnew;
      }
      VA_CA_UNROLL
      for (int c = 0; c < NC; ++c)
        *reinterpret_cast<float4*>(Pt + (tx + 16 * c) * pl.ldT + row0) =
            make_float4(pd[0][c], pd[1][c], pd[2][c], pd[3][c]);
      __syncthreads();
      caAccumTile<DP>(Pt, pl.ldT, Vs, pl.ld, nK, row0, tx, o);
    }
    VA_CA_UNROLL
    for (int r = 0; r < 4; ++r) {
      const float lsum = caRowSum16(l[r]);
      const int64_t i = i0 + row0 + r;
      if (i < a.Lq) {
        float* op = out + ((b * a.Lq + i) * a.heads + m) * a.dv;
        VA_CA_UNROLL
        for (int c = 0; c < NO; ++c)
          if (tx + 16 * c < a.dv) op[tx + 16 * c] = o[r][c] / lsum;
        if (tx == 0) lse[(b * a.heads + m) * a.Lq + i] = mrow[r] + logf(lsum);
      }
    }
  }
}

// ------------------------------------------------------------------------------ fast backward
// dQ kernel. Shared: Qs [BQ][ld] (offA), Gs [BQ][ld] (offB, dOut), Ks [kBK][ld] (offC),
// Vs [kBK][ld] (offD), dSt [kBK][ldT] (offS, dS transposed), lse / D of the queries [2][BQ] (offL),
// keep flags [BQ][ldM] (offM).
// dst: dQ (direct) or the per-image partial [B, Lq, M, d]; Dws[B·M·Lq] receives D.
template <int DP>
__global__ void __launch_bounds__(kCaMaxThreads, DP <= 96 ? 2 : 1)
    caBackwardDqKernel(const float* __restrict__ q, const float* __restrict__ k,
                       const float* __restrict__ v, const float* __restrict__ out,
                       const float* __restrict__ lse, const float* __restrict__ dOut,
                       float* __restrict__ dst, bool direct, float* __restrict__ Dws, CaArgs a,
                       CaPlan pl) {
  constexpr int NO = DP / 16;
  constexpr int NC = kCaBK / 16;
  VA_DYNAMIC_SHARED(float, smem);
  float* Qs = smem + pl.offA;
  float* Gs = smem + pl.offB;
  float* Ks = smem + pl.offC;
  float* Vs = smem + pl.offD;
  float* dSt = smem + pl.offS;
  float* Ls = smem + pl.offL;  // [rows] lse of the tile's queries
  float* Ds = Ls + pl.rows;    // [rows] D of the tile's queries
  unsigned char* Mk = reinterpret_cast<unsigned char*>(smem + pl.offM);
  const int tid = static_cast<int>(threadIdx.x), tx = tid & 15, ty = tid >> 4;
  const int row0 = 4 * ty;
  const int nKT = static_cast<int>((a.Lk + kCaBK - 1) / kCaBK);
  for (int64_t item = blockIdx.x; item < a.tiles; item += gridDim.x) {
    const CaItem it = caItem(a, item, a.nTiles);
    const int m = it.m;
    const int64_t b = it.b, qb = it.qb;
    const int64_t i0 = it.t * pl.rows;
    __syncthreads();
    caStageRows<DP>(Qs, pl.ld, q, qb, a.Lq, a.heads, m, a.d, i0, pl.rows);
    caStageRows<DP>(Gs, pl.ld, dOut, b, a.Lq, a.heads, m, a.dv, i0, pl.rows);
    __syncthreads();
    // D_i = dOut_i·out_i and the row lse (+∞ for padding rows: P = 0 there), kept in shared
    // memory (Ls, Ds) rather than registers; read after the key loop's first barrier
    VA_CA_UNROLL
    for (int r = 0; r < 4; ++r) {
      const int64_t i = i0 + row0 + r;
      float part = 0.0f;
      if (i < a.Lq) {
        const float* op = out + ((b * a.Lq + i) * a.heads + m) * a.dv;
        VA_CA_UNROLL
        for (int c = 0; c < NO; ++c)
          if (tx + 16 * c < a.dv) part += Gs[(row0 + r) * pl.ld + tx + 16 * c] * __ldg(op + tx + 16 * c);
      }
      const float D = caRowSum16(part);
      if (tx == 0) {
        Ds[row0 + r] = D;
        Ls[row0 + r] = i < a.Lq ? __ldg(lse + (b * a.heads + m) * a.Lq + i) : INFINITY;
        if (i < a.Lq) Dws[(b * a.heads + m) * a.Lq + i] = D;
      }
    }
    float dq[4][NO];
    caZero(dq);
    for (int kt = 0; kt < nKT; ++kt) {
      const int64_t j0 = static_cast<int64_t>(kt) * kCaBK;
      const int nK = static_cast<int>(a.Lk - j0 < kCaBK ? a.Lk - j0 : kCaBK);
      __syncthreads();  // the previous key tile is consumed
      caStageRows<DP>(Ks, pl.ld, k, b, a.Lk, a.heads, m, a.d, j0, kCaBK);
      caStageRows<DP>(Vs, pl.ld, v, b, a.Lk, a.heads, m, a.dv, j0, kCaBK);
      if (a.useDropout) caDrawKeep(a, b, m, i0, pl.rows, j0, kCaBK, Mk, pl.ldM, 1);
      __syncthreads();
      float s[4][NC], dp[4][NC];
      caDotTile<DP, NC>(Qs, Ks, pl.ld, row0, tx, s);
      caDotTile<DP, NC>(Gs, Vs, pl.ld, row0, tx, dp);
      float ds[4][NC];
      VA_CA_UNROLL
      for (int r = 0; r < 4; ++r) {
        const float ls = Ls[row0 + r], D = Ds[row0 + r];
        VA_CA_UNROLL
        for (int c = 0; c < NC; ++c) {
          const float p = tx + 16 * c < nK ? expf(a.scale * s[r][c] - ls) : 0.0f;
          float g = dp[r][c];
          if (a.useDropout) g = Mk[(row0 + r) * pl.ldM + tx + 16 * c] ? g * a.keepScale : 0.0f;
          ds[r][c] = p * (g - D);
        }
      }
      VA_CA_UNROLL
      for (int c = 0; c < NC; ++c)
        *reinterpret_cast<float4*>(dSt + (tx + 16 * c) * pl.ldT + row0) =
            make_float4(ds[0][c], ds[1][c], ds[2][c], ds[3][c]);
      __syncthreads();
      caAccumTile<DP>(dSt, pl.ldT, Ks, pl.ld, nK, row0, tx, dq);
    }
    VA_CA_UNROLL
    for (int r = 0; r < 4; ++r) {
      const int64_t i = i0 + row0 + r;
      if (i >= a.Lq) continue;
      float* dp = dst + (((direct ? qb : b) * a.Lq + i) * a.heads + m) * a.d;
      VA_CA_UNROLL
      for (int c = 0; c < NO; ++c)
        if (tx + 16 * c < a.d) dp[tx + 16 * c] = a.scale * dq[r][c];
    }
  }
}

// dK / dV kernel. The owned side is a tile of BKV = 4·TY keys; query tiles of kBQ2 stream through.
// Shared: Ks [BKV][ld] (offA), Vs [BKV][ld] (offB), Qs [kBQ2][ld] (offC), Gs [kBQ2][ld] (offD),
// Pq [kBQ2][ldT] (offP: P̃ with the query as row, ldT = BKV + 4), dSq [kBQ2][ldT] (offS),
// lse / D of the query tile [2][kBQ2] (offL), keep flags [kBQ2][ldM] bytes (offM).
template <int DP>
__global__ void __launch_bounds__(kCaMaxThreads, DP <= 96 ? 2 : 1)
    caBackwardDkvKernel(const float* __restrict__ q, const float* __restrict__ k,
                        const float* __restrict__ v, const float* __restrict__ lse,
                        const float* __restrict__ dOut, const float* __restrict__ Dws,
                        float* __restrict__ dK, float* __restrict__ dV, CaArgs a, CaPlan pl) {
  constexpr int NO = DP / 16;
  constexpr int NC = kCaBQ2 / 16;
  VA_DYNAMIC_SHARED(float, smem);
  float* Ks = smem + pl.offA;
  float* Vs = smem + pl.offB;
  float* Qs = smem + pl.offC;
  float* Gs = smem + pl.offD;
  float* Pq = smem + pl.offP;
  float* dSq = smem + pl.offS;
  float* Ls = smem + pl.offL;
  float* Ds = Ls + kCaBQ2;
  unsigned char* Mk = reinterpret_cast<unsigned char*>(smem + pl.offM);
  const int tid = static_cast<int>(threadIdx.x), tx = tid & 15, ty = tid >> 4;
  const int nth = static_cast<int>(blockDim.x);
  const int row0 = 4 * ty;
  const int nQT = static_cast<int>((a.Lq + kCaBQ2 - 1) / kCaBQ2);
  for (int64_t item = blockIdx.x; item < a.tiles; item += gridDim.x) {
    const CaItem it = caItem(a, item, a.nTiles);
    const int m = it.m;
    const int64_t b = it.b, qb = it.qb;
    const int64_t j0 = it.t * pl.rows;
    __syncthreads();
    caStageRows<DP>(Ks, pl.ld, k, b, a.Lk, a.heads, m, a.d, j0, pl.rows);
    caStageRows<DP>(Vs, pl.ld, v, b, a.Lk, a.heads, m, a.dv, j0, pl.rows);
    float dk[4][NO], dv[4][NO];
    caZero(dk);
    caZero(dv);
    for (int qt = 0; qt < nQT; ++qt) {
      const int64_t i0 = static_cast<int64_t>(qt) * kCaBQ2;
      const int nQ = static_cast<int>(a.Lq - i0 < kCaBQ2 ? a.Lq - i0 : kCaBQ2);
      if (qt > 0) __syncthreads();  // the previous query tile is consumed
      caStageRows<DP>(Qs, pl.ld, q, qb, a.Lq, a.heads, m, a.d, i0, kCaBQ2);
      caStageRows<DP>(Gs, pl.ld, dOut, b, a.Lq, a.heads, m, a.dv, i0, kCaBQ2);
      for (int t = tid; t < kCaBQ2; t += nth) {
        const int64_t i = i0 + t;
        Ls[t] = t < nQ ? __ldg(lse + (b * a.heads + m) * a.Lq + i) : INFINITY;
        Ds[t] = t < nQ ? Dws[(b * a.heads + m) * a.Lq + i] : 0.0f;
      }
      if (a.useDropout) caDrawKeep(a, b, m, i0, kCaBQ2, j0, pl.rows, Mk, pl.ldM, 1);
      __syncthreads();
      // transposed scores: rows = keys j0 + row0 + r, columns = queries i0 + tx + 16c
      float s[4][NC], dp[4][NC];
      caDotTile<DP, NC>(Ks, Qs, pl.ld, row0, tx, s);
      caDotTile<DP, NC>(Vs, Gs, pl.ld, row0, tx, dp);
      float pd[4][NC], ds[4][NC];
      VA_CA_UNROLL
      for (int c = 0; c < NC; ++c) {
        const int qi = tx + 16 * c;
        const float ls = Ls[qi], D = Ds[qi];
        VA_CA_UNROLL
        for (int r = 0; r < 4; ++r) {
          const float p = expf(a.scale * s[r][c] - ls);  // 0 for padding queries (ls = +∞)
          float g = dp[r][c], pk = p;
          if (a.useDropout) {
            const bool keep = Mk[qi * pl.ldM + row0 + r] != 0;
            g = keep ? g * a.keepScale : 0.0f;
            pk = keep ? p * a.keepScale : 0.0f;
          }
          pd[r][c] = pk;
          ds[r][c] = p * (g - D);
        }
      }
      VA_CA_UNROLL
      for (int c = 0; c < NC; ++c) {
        *reinterpret_cast<float4*>(Pq + (tx + 16 * c) * pl.ldT + row0) =
            make_float4(pd[0][c], pd[1][c], pd[2][c], pd[3][c]);
        *reinterpret_cast<float4*>(dSq + (tx + 16 * c) * pl.ldT + row0) =
            make_float4(ds[0][c], ds[1][c], ds[2][c], ds[3][c]);
      }
      __syncthreads();
      caAccumTile<DP>(Pq, pl.ldT, Gs, pl.ld, nQ, row0, tx, dv);
      caAccumTile<DP>(dSq, pl.ldT, Qs, pl.ld, nQ, row0, tx, dk);
    }
    VA_CA_UNROLL
    for (int r = 0; r < 4; ++r) {
      const int64_t j = j0 + row0 + r;
      if (j >= a.Lk) continue;
      float* dkp = dK + ((b * a.Lk + j) * a.heads + m) * a.d;
      float* dvp = dV + ((b * a.Lk + j) * a.heads + m) * a.dv;
      VA_CA_UNROLL
      for (int c = 0; c < NO; ++c) {
        if (tx + 16 * c < a.d) dkp[tx + 16 * c] = a.scale * dk[r][c];
        if (tx + 16 * c < a.dv) dvp[tx + 16 * c] = dv[r][c];
      }
    }
  }
}

// ------------------------------------------------------------------------------ generic path
// One thread per query row (forward, dQ) or key row (dK/dV); every operand from global memory.
__device__ __forceinline__ float caDotGlobal(const float* x, const float* y, int n) {
  float acc = 0.0f;
  for (int e = 0; e < n; ++e) acc += __ldg(x + e) * __ldg(y + e);
  return acc;
}

__device__ __forceinline__ bool caKeepAt(const CaArgs& a, int64_t b, int m, int64_t i, int64_t j) {
  return va::philox::dropoutKeep(static_cast<uint64_t>(((b * a.heads + m) * a.Lq + i) * a.Lk + j),
                                 a.seed, 0, a.dropout);
}

// Rows r = (b·M + m)·Lq + i.
template <int DUMMY>
__global__ void __launch_bounds__(kCaGenericThreads)
    caForwardGenericKernel(const float* __restrict__ q, const float* __restrict__ k,
                           const float* __restrict__ v, float* __restrict__ out,
                           float* __restrict__ lse, CaArgs a) {
  const int64_t rows = a.B * a.heads * a.Lq;
  for (int64_t row = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; row < rows;
       row += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const CaItem it = caItem(a, row, a.Lq);
    const int64_t i = it.t, b = it.b;
    const int m = it.m;
    const float* qp = q + ((it.qb * a.Lq + i) * a.heads + m) * a.d;
    float mx = -INFINITY, l = 0.0f;
    for (int64_t j = 0; j < a.Lk; ++j) {
      const float s = a.scale * caDotGlobal(qp, k + ((b * a.Lk + j) * a.heads + m) * a.d, a.d);
      if (s > mx) {
        l *= expf(mx - s);
        mx = s;
      }
      l += expf(s - mx);
    }
    const float ls = mx + logf(l);
    lse[row] = ls;
    float* op = out + ((b * a.Lq + i) * a.heads + m) * a.dv;
    for (int e = 0; e < a.dv; ++e) op[e] = 0.0f;
    for (int64_t j = 0; j < a.Lk; ++j) {
      if (a.useDropout && !caKeepAt(a, b, m, i, j)) continue;
      const float* kp = k + ((b * a.Lk + j) * a.heads + m) * a.d;
      float p = expf(a.scale * caDotGlobal(qp, kp, a.d) - ls);
      if (a.useDropout) p *= a.keepScale;
      const float* vp = v + ((b * a.Lk + j) * a.heads + m) * a.dv;
      for (int e = 0; e < a.dv; ++e) op[e] += p * __ldg(vp + e);
    }
  }
}

template <int DUMMY>
__global__ void __launch_bounds__(kCaGenericThreads)
    caBackwardDqGenericKernel(const float* __restrict__ q, const float* __restrict__ k,
                              const float* __restrict__ v, const float* __restrict__ out,
                              const float* __restrict__ lse, const float* __restrict__ dOut,
                              float* __restrict__ dst, bool direct, float* __restrict__ Dws, CaArgs a) {
  const int64_t rows = a.B * a.heads * a.Lq;
  for (int64_t row = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; row < rows;
       row += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const CaItem it = caItem(a, row, a.Lq);
    const int64_t i = it.t, b = it.b, qb = it.qb;
    const int m = it.m;
    const float* qp = q + ((qb * a.Lq + i) * a.heads + m) * a.d;
    const float* gp = dOut + ((b * a.Lq + i) * a.heads + m) * a.dv;
    const float D = caDotGlobal(gp, out + ((b * a.Lq + i) * a.heads + m) * a.dv, a.dv);
    Dws[row] = D;
    const float ls = __ldg(lse + row);
    float* dq = dst + (((direct ? qb : b) * a.Lq + i) * a.heads + m) * a.d;
    for (int e = 0; e < a.d; ++e) dq[e] = 0.0f;
    for (int64_t j = 0; j < a.Lk; ++j) {
      const float* kp = k + ((b * a.Lk + j) * a.heads + m) * a.d;
      const float p = expf(a.scale * caDotGlobal(qp, kp, a.d) - ls);
      float g = caDotGlobal(gp, v + ((b * a.Lk + j) * a.heads + m) * a.dv, a.dv);
      if (a.useDropout) g = caKeepAt(a, b, m, i, j) ? g * a.keepScale : 0.0f;
      const float ds = a.scale * p * (g - D);
      for (int e = 0; e < a.d; ++e) dq[e] += ds * __ldg(kp + e);
    }
  }
}

// Rows r = (b·M + m)·Lk + j; queries ascending.
template <int DUMMY>
__global__ void __launch_bounds__(kCaGenericThreads)
    caBackwardDkvGenericKernel(const float* __restrict__ q, const float* __restrict__ k,
                               const float* __restrict__ v, const float* __restrict__ lse,
                               const float* __restrict__ dOut, const float* __restrict__ Dws,
                               float* __restrict__ dK, float* __restrict__ dV, CaArgs a) {
  const int64_t rows = a.B * a.heads * a.Lk;
  for (int64_t row = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; row < rows;
       row += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const CaItem it = caItem(a, row, a.Lk);
    const int64_t j = it.t, b = it.b, qb = it.qb;
    const int m = it.m;
    const float* kp = k + ((b * a.Lk + j) * a.heads + m) * a.d;
    const float* vp = v + ((b * a.Lk + j) * a.heads + m) * a.dv;
    float* dkp = dK + ((b * a.Lk + j) * a.heads + m) * a.d;
    float* dvp = dV + ((b * a.Lk + j) * a.heads + m) * a.dv;
    for (int e = 0; e < a.d; ++e) dkp[e] = 0.0f;
    for (int e = 0; e < a.dv; ++e) dvp[e] = 0.0f;
    for (int64_t i = 0; i < a.Lq; ++i) {
      const float* qp = q + ((qb * a.Lq + i) * a.heads + m) * a.d;
      const float* gp = dOut + ((b * a.Lq + i) * a.heads + m) * a.dv;
      const int64_t r = (b * a.heads + m) * a.Lq + i;
      const float p = expf(a.scale * caDotGlobal(kp, qp, a.d) - __ldg(lse + r));
      float g = caDotGlobal(vp, gp, a.dv), pk = p;
      if (a.useDropout) {
        const bool keep = caKeepAt(a, b, m, i, j);
        g = keep ? g * a.keepScale : 0.0f;
        pk = keep ? p * a.keepScale : 0.0f;
      }
      const float ds = a.scale * p * (g - Dws[r]);
      for (int e = 0; e < a.d; ++e) dkp[e] += ds * __ldg(qp + e);
      for (int e = 0; e < a.dv; ++e) dvp[e] += pk * __ldg(gp + e);
    }
  }
}

// dst[x] = Σ_{b < B} part[b·n + x], b ascending.
template <int DUMMY>
__global__ void caBatchSumKernel(const float* __restrict__ part, float* __restrict__ dst, int64_t B,
                                 int64_t n) {
  for (int64_t x = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; x < n;
       x += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float acc = 0.0f;
    for (int64_t b = 0; b < B; ++b) acc += __ldg(part + b * n + x);
    dst[x] = acc;
  }
}

VA_CUDA_NAMESPACE_END
